"""A real DNS server on loopback for the custom-domain checks (dnslib, in a thread of the test process).

`DnsZone.txt[name] = ["value", ...]` publishes TXT records and `DnsZone.hosts[name] = ["192.0.2.1", "::1", ...]`
addresses (A and AAAA records, for webhook hosts); any other name is NXDOMAIN, a name in
`no_txt` exists without TXT records (NOERROR, empty answer), and `silent` names get no answer at
all (the resolver times out). Our code reaches it through DNS_RESOLVERS, as it would any server.
"""

import threading
from dataclasses import dataclass, field

from dnslib import AAAA, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class DnsZone(BaseResolver):
    txt: dict[str, list[str]] = field(default_factory=dict)
    hosts: dict[str, list[str]] = field(default_factory=dict)
    no_txt: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    queries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.txt.clear()
            self.hosts.clear()
            self.no_txt.clear()
            self.silent.clear()
            self.queries.clear()

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            self.queries.append(name)
            if name in self.silent:
                raise DNSError(f"{name}: staying silent")  # dnslib's handler drops it: no reply is sent
            values = list(self.txt.get(name, []))
            addresses = list(self.hosts.get(name, []))
            exists = name in self.txt or name in self.no_txt or name in self.hosts
        reply = request.reply()
        if not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
        elif request.q.qtype in (QTYPE.A, QTYPE.AAAA):
            for address in addresses:
                if (":" in address) == (request.q.qtype == QTYPE.AAAA):
                    record = AAAA(address) if ":" in address else A(address)
                    reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=record, ttl=0))
        return reply


class _QuietLogger(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


def start_dns_server() -> tuple[DNSServer, DnsZone, int]:
    """A UDP DNS server on 127.0.0.1 at a free port; returns it, its zone and the port."""
    zone = DnsZone()
    server = DNSServer(zone, address="127.0.0.1", port=0, logger=_QuietLogger())
    server.start_thread()
    return server, zone, server.server.server_address[1]
