"""DNS lookups our code makes: the custom-domain TXT checks (portals) and webhook hosts (events).

Both go through the servers in DNS_RESOLVERS (`host[:port],...`) when it is set, with DNS_TIMEOUT for
one lookup. Unset, TXT records come from the system's name servers (/etc/resolv.conf) and host
addresses from the system resolver (getaddrinfo: /etc/hosts too), as any HTTP client would find them.
"""

import ipaddress
import socket

import dns.exception
import dns.nameserver
import dns.resolver
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HostLookupError(Exception):
    """A host name that has no address (or whose lookup failed): the message says which and why."""


def _nameserver(entry: str) -> dns.nameserver.Nameserver:
    """`host` or `host:port` (an IPv6 address without a port: `::1`)."""
    entry = entry.strip()
    host, port = (entry.rsplit(":", 1)[0], int(entry.rsplit(":", 1)[1])) if entry.count(":") == 1 else (entry, 53)
    return dns.nameserver.Do53Nameserver(host, port)


def resolver() -> dns.resolver.Resolver:
    """A dnspython resolver on DNS_RESOLVERS (else /etc/resolv.conf), DNS_TIMEOUT for a lookup."""
    if not settings.DNS_RESOLVERS:
        found = dns.resolver.Resolver()  # /etc/resolv.conf
    else:
        found = dns.resolver.Resolver(configure=False)
        found.nameservers = [_nameserver(entry) for entry in settings.DNS_RESOLVERS]
    found.lifetime = settings.DNS_TIMEOUT
    found.timeout = settings.DNS_TIMEOUT
    return found


def host_addresses(host: str) -> list[IPAddress]:
    """Every address `host` names, IPv4 first (an IP literal is its own address); raises HostLookupError.

    An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is given as the IPv4 address it carries: that is
    where a connection to it goes.
    """
    try:
        return [_unmapped(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    addresses = _dns_addresses(host) if settings.DNS_RESOLVERS else _system_addresses(host)
    if not addresses:
        raise HostLookupError(f"{host} has no address")
    unique = list(dict.fromkeys(_unmapped(address) for address in addresses))
    return sorted(unique, key=lambda address: address.version)


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _system_addresses(host: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostLookupError(f"{host} does not resolve ({exc})") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _dns_addresses(host: str) -> list[IPAddress]:
    lookup = resolver()
    addresses: list[IPAddress] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = lookup.resolve(host, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.resolver.LifetimeTimeout as exc:
            raise HostLookupError(f"the DNS lookup of {host} timed out after {settings.DNS_TIMEOUT:g} s") from exc
        except dns.exception.DNSException as exc:
            raise HostLookupError(f"the DNS lookup of {host} failed: {exc}") from exc
        addresses.extend(ipaddress.ip_address(record.to_text()) for record in answer)
    return addresses
