"""Load from Debian's `wrk`: bounded runs against the bench server, each returning requests/s and errors.

wrk runs one thread with a few connections (the server has the other core), for a fixed number of
seconds or until a number of responses: a Lua script sets the Host and Authorization headers
(rotating over several portals when given several targets), counts every non-2xx response (wrk's
own error count ignores 3xx) and prints a JSON summary; stopping at a count is the script telling
this module, which then interrupts wrk (wrk otherwise waits out its full duration).
"""

import json
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.server import BenchServer, die_with_parent

WRK_MISSING = "wrk is not installed (Debian: apt-get install -y wrk)"
LIMIT_MARKER = "bench-limit-reached"

_SCRIPT = """
local targets = {targets}
local limit = {limit}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  responses = 0
  position = 0
end

function request()
  position = position % #targets + 1
  return wrk.format("GET", targets[position].path, targets[position].headers)
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  if limit > 0 and responses == limit then
    wrk.thread:stop()
    io.write("{marker}\\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local errors = summary.errors
  io.write(string.format(
    '{{"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, bad, errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Target:
    path: str
    host: str
    token: str | None = None
    portal_id: str | None = None  # sent as X-Portal-ID (on a main host)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(value: str) -> str:
    if not value.isascii() or any(char in value for char in '"\\\n\r'):
        raise ValueError(f"not a plain header value: {value!r}")
    return f'"{value}"'


def _script(targets: list[Target], limit: int) -> str:
    entries = []
    for target in targets:
        headers = {"Host": target.host, "X-Forwarded-Proto": "https", "Accept": "application/json"}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        if target.portal_id:
            headers["X-Portal-ID"] = target.portal_id
        fields = ", ".join(f"[{_lua_string(name)}] = {_lua_string(value)}" for name, value in headers.items())
        entries.append(f"{{path = {_lua_string(target.path)}, headers = {{{fields}}}}}")
    return _SCRIPT.format(targets="{" + ", ".join(entries) + "}", limit=limit, marker=LIMIT_MARKER)


def wrk(
    server: BenchServer, targets: list[Target], *, seconds: int, connections: int = 4, limit: int = 0
) -> LoadResult:
    """One wrk run: `seconds` long, or until `limit` responses (then `seconds` is only the bound)."""
    if not wrk_available():
        raise RuntimeError(WRK_MISSING)
    with tempfile.NamedTemporaryFile("w", prefix="bench-wrk-", suffix=".lua", delete=False) as script:
        script.write(_script(targets, limit))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script.name, server.url]
    try:
        process = subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent
        )
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if LIMIT_MARKER in line:
                process.send_signal(signal.SIGINT)  # wrk prints its summary at once instead of sleeping on
        if process.wait(timeout=seconds + 60) != 0:
            raise RuntimeError(f"wrk exited {process.returncode}:\n{''.join(lines)}")
    finally:
        Path(script.name).unlink(missing_ok=True)
    summaries = [line for line in lines if line.startswith('{"requests"')]
    if not summaries:
        raise RuntimeError(f"wrk printed no summary:\n{''.join(lines)}")
    raw = json.loads(summaries[-1])
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        non_2xx=raw["non2xx"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )
