"""netsmith from Python: the socket tutorials' programs in a few lines.

    import netsmith
    with netsmith.connect("127.0.0.1", 7, timeout=2) as t:
        t.send_line(b"Hello World")
        print(t.recv_line())
    for r in netsmith.scan("127.0.0.1", ports="1-1024"):
        print(r.port, r.state, r.reason)
    with netsmith.serve("echo", port=0) as s:
        print(netsmith.bench_echo("127.0.0.1", s.port, seconds=1))

Everything network-related is netsmith's Rust library (`netsmith::tube`,
`netsmith::scan`, its resolver), called with the GIL released: threads
run while one waits, and Ctrl-C interrupts a wait with KeyboardInterrupt.
"""

import json
import re
import signal
import threading
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Union

from . import _native
from ._native import Closed, Timeout

__all__ = ["Tube", "Timeout", "Closed", "ScanResult", "Listener", "listen", "Service", "Address", "BenchResult",
           "Latency", "connect", "spawn", "resolve", "scan", "serve", "bench_echo",
           "bench_stream", "bench_connect", "bench_udp"]

Bytes = Union[bytes, bytearray, memoryview, str]


def _b(data: Bytes) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def _endpoint(host: str, port: Optional[int]) -> str:
    if port is None:
        return host
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}"


def _seconds(value: float) -> str:
    """Seconds as a duration netsmith's command line reads."""
    return f"{max(0, round(value * 1000))}ms"


class _Closing:
    """`with` support: leaving the block calls `close()`."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Tube(_Closing):
    """A conversation with one peer. Every receive waits at most `timeout`
    seconds; a timeout raises `netsmith.Timeout`, whose `partial` is what
    had arrived, and those bytes stay in the tube for the next receive.
    The end of the stream in the middle of a receive raises
    `netsmith.Closed` (an EOFError), also with `partial`."""

    def __init__(self, native, timeout: float):
        self._t = native
        self._t.timeout = timeout

    @property
    def timeout(self) -> float:
        return self._t.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._t.timeout = seconds

    @property
    def buffered(self) -> bytes:
        """What has arrived and not been taken."""
        return self._t.buffered

    def send(self, data: Bytes) -> None:
        """Sends all of `data`."""
        self._t.send(_b(data))

    def send_line(self, data: Bytes) -> None:
        """Sends `data` and a newline."""
        self._t.send_line(_b(data))

    def recv(self) -> bytes:
        """Whatever has arrived, at least one byte."""
        return self._t.recv()

    def recv_line(self) -> bytes:
        """One line, with its newline."""
        return self._t.recv_line()

    def recv_until(self, delim: Bytes) -> bytes:
        """Everything up to and including `delim`."""
        return self._t.recv_until(_b(delim))

    def recv_exact(self, n: int) -> bytes:
        """Exactly `n` bytes."""
        return self._t.recv_exact(n)

    def recv_all(self) -> bytes:
        """Everything until the peer closes, within the timeout."""
        return self._t.recv_all()

    def send_line_after(self, delim: Bytes, line: Bytes) -> bytes:
        """Receives up to `delim`, then sends `line` and a newline."""
        return self._t.send_line_after(_b(delim), _b(line))

    def shutdown(self) -> None:
        """Ends our side: the peer reads EOF, and receiving goes on."""
        self._t.shutdown()

    def close(self) -> None:
        """Closes the connection (and ends a spawned program)."""
        self._t.close()


def connect(host: str, port: Optional[int] = None, *, timeout: float = 5.0,
            tls: bool = False, pin: Optional[str] = None, ca: Optional[str] = None,
            insecure: bool = False) -> Tube:
    """Connects to `host`:`port`, or to an endpoint of netsmith's grammar
    given alone ("127.0.0.1:7", "tls://example.org:443", "udp://127.0.0.1:53",
    "unix:/run/app.sock"). Names get every address, tried as Happy Eyeballs
    says. `tls=True` (or a tls:// endpoint) verifies the server against the
    system's roots, `ca`, or `pin` ("sha256:..."). A refusal raises
    ConnectionRefusedError, as a socket would."""
    endpoint = _endpoint(host, port)
    if tls and not endpoint.startswith("tls://"):
        endpoint = "tls://" + endpoint
    return Tube(_native.connect(endpoint, pin=pin, ca=ca, insecure=insecure), timeout)


def spawn(command: str, *, timeout: float = 5.0) -> Tube:
    """Starts `command` (split as a shell would, no shell involved) with its
    stdin and stdout as the tube, like pwntools' `process`."""
    return Tube(_native.spawn(command), timeout)


class Listener(_Closing):
    """A bound socket waiting for peers (see `listen`); a context manager
    that closes it on exit."""

    def __init__(self, native, timeout: float):
        self._l = native
        self._timeout = timeout
        self.host, self.port = native.address or (None, None)

    def accept(self, timeout: Optional[float] = None) -> Tube:
        """The next client as a Tube, waiting at most `timeout` seconds
        (None: for ever; then TimeoutError). Over UDP there is one client:
        the first sender, whose datagram is the first thing received."""
        return Tube(self._l.accept(timeout), self._timeout)

    def close(self) -> None:
        """Stops listening (a Unix socket's file is removed)."""
        self._l.close()


def listen(port: Union[int, str] = 0, host: str = "127.0.0.1", *, udp: bool = False,
           timeout: float = 5.0) -> Listener:
    """Listens on `host`:`port` (0: a free port, read back as `.port`), or
    on an endpoint given as a string ("unix:/tmp/app.sock",
    "udp://127.0.0.1:9000"). Accepted tubes receive with `timeout`."""
    if isinstance(port, str) and not port.isdigit():
        endpoint = port
    else:
        endpoint = _endpoint(host, int(port))
        if udp:
            endpoint = "udp://" + endpoint
    return Listener(_native.listen(endpoint), timeout)


def resolve(name: str) -> List[str]:
    """Every address of `name`, in the order connect tries them."""
    return _native.resolve(name)


@dataclass(frozen=True)
class ScanResult:
    host: str
    port: int
    state: str
    """open, closed, filtered, unreachable or undecided"""
    reason: str
    """syn-ack, conn-refused, no-response, host-unreach, ..."""
    rtt_ms: Optional[float]


def scan(targets: Union[str, List[str]], ports: str = "1-1024", *,
         authorized: bool = False) -> Iterator[ScanResult]:
    """A TCP connect scan of `targets` (addresses, CIDR blocks, ranges,
    names) on `ports` ("22,80,8000-8100", "-" for all), every state, as the
    results land. Targets outside loopback need `authorized=True`: scan
    only networks whose owner gave you written permission."""
    if isinstance(targets, str):
        targets = [targets]
    try:
        results = _native.scan(list(targets), ports, authorized)
    except ValueError as e:
        raise ValueError(str(e).replace("--authorized", "authorized=True")) from None
    for host, port, state, reason, rtt in results:
        yield ScanResult(host, port, state, reason, rtt)


@dataclass(frozen=True)
class Address:
    """Where one service listens."""
    service: str
    transport: str
    """tcp, tls, udp or unix"""
    host: Optional[str]
    port: Optional[int]
    shown: str
    """as `netsmith serve` prints it: 127.0.0.1:7, udp://..., unix:PATH"""


class Service(_Closing):
    """Services running in the background (see `serve`); a context manager
    that stops them on exit."""

    def __init__(self, native):
        self._s = native
        self.addresses = [Address(*a) for a in native.addresses]
        self.totals: Optional[Dict[str, dict]] = None

    @property
    def port(self) -> int:
        """The port of the first service's first IP socket."""
        return next(a.port for a in self.addresses if a.port is not None)

    def address(self, service: str, transport: str = "tcp") -> Address:
        """Where `service` listens over `transport`."""
        for a in self.addresses:
            if a.service == service and a.transport == transport:
                return a
        raise KeyError(f"{service}/{transport} is not being served")

    def stop(self) -> Dict[str, dict]:
        """Stops accepting, waits for open connections (up to the grace
        period), and returns each service's totals: connections, bytes,
        errors, as `netsmith serve --json` prints them."""
        report = self._s.stop()
        if report is not None:
            self.totals = {}
            for line in report.splitlines():
                if line.strip():
                    obj = json.loads(line)
                    self.totals[obj.get("service", str(len(self.totals)))] = obj
        return self.totals or {}

    def serve_forever(self) -> None:
        """Waits until Ctrl-C or SIGTERM, then stops. Serving goes on in
        netsmith's threads all along. (SIGTERM is caught only when called
        from the main thread, where Python handles signals.)"""
        def interrupt(signum, frame):
            raise KeyboardInterrupt
        main = threading.current_thread() is threading.main_thread()
        before = signal.signal(signal.SIGTERM, interrupt) if main else None
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            if main:
                signal.signal(signal.SIGTERM, before)
            self.stop()

    def close(self) -> None:
        """`stop()`, for `with`."""
        self.stop()

    def __repr__(self) -> str:
        where = ", ".join(f"{a.service}/{a.transport} {a.shown}" for a in self.addresses)
        return f"<netsmith.Service {where}>"


def serve(*services: str, port: Optional[int] = None, bind: str = "127.0.0.1",
          tcp: bool = True, udp: bool = False, unix: Optional[str] = None,
          quotes: Optional[str] = None, text: Optional[str] = None,
          max_conns: Optional[int] = None, grace: float = 1.0) -> Service:
    """Runs the classic services (echo, discard, chargen, qotd, daytime,
    time, banner) in the background, as `netsmith serve` does, until
    `stop()` or the end of the `with` block. Each service gets `port`
    (0: a free one, read back as `s.port`), or its own port given as
    "echo=7007", or its well-known one. TCP by default; `udp=True` adds
    UDP (the kernel picks a UDP port of its own when port is 0: see
    `s.address("echo", "udp")`), `unix=DIR` serves DIR/SERVICE.sock.
    Binding outside loopback warns, as the CLI does."""
    if not services:
        raise ValueError("name at least one service: echo, discard, chargen, qotd, "
                         "daytime, time or banner")
    argv = ["serve", *services, "--bind", bind, "--grace", _seconds(grace), "--json"]
    if port is not None:
        if len(services) == 1:
            argv += ["--port", str(port)]
        else:
            argv = ["serve", *(s if "=" in s else f"{s}={port}" for s in services),
                    *argv[1 + len(services):]]
    if not tcp and not udp and unix is None:
        raise ValueError("tcp=False, udp=False: serve over at least one of tcp, udp, unix")
    argv += ["--tcp"] * tcp + ["--udp"] * udp
    if unix is not None:
        argv += ["--unix", str(unix)]
    if quotes is not None:
        argv += ["--quotes", str(quotes)]
    if text is not None:
        argv += ["--text", text]
    if max_conns is not None:
        argv += ["--max-conns", str(max_conns)]
    try:
        return Service(_native.serve(argv))
    except ValueError as e:
        raise ValueError(_keywords(str(e))) from None


def _keywords(message: str) -> str:
    """A command-line message in the keywords' words: "'--connections
    <CONNECTIONS>'" becomes "connections", "-c" stays what it says."""
    message = re.sub(r"'--([a-z-]+) <[A-Z_]+>'", lambda m: m.group(1).replace("-", "_"), message)
    return message.replace("--", "")


@dataclass(frozen=True)
class Latency:
    """Percentiles of one kind of wait, in milliseconds."""
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p99_9_ms: float
    max_ms: float


@dataclass(frozen=True)
class BenchResult:
    """One run of a `bench_*` function: what `netsmith bench --json` says."""
    workload: str
    target: str
    duration_s: float
    requests: int
    requests_per_s: float
    bytes_sent: int
    bytes_received: int
    mb_per_s_sent: float
    mb_per_s_received: float
    errors: Dict[str, int]
    """failed requests by kind: refused, reset, timeout, eof, mismatch, other"""
    latency: Latency
    connect_time: Optional[Latency] = None
    time_to_first_byte: Optional[Latency] = None


_FAILURES = {"refused": ConnectionRefusedError, "reset": ConnectionResetError,
             "timeout": TimeoutError}


def _bench(workload: str, target: str, seconds: float, count: Optional[int],
           timeout: float, flags: List[str]) -> BenchResult:
    argv = ["bench", workload, target, "--timeout", _seconds(timeout), *flags]
    argv += ["-n", str(count)] if count is not None else ["-d", _seconds(seconds)]
    try:
        report, failed = _native.bench(argv)
    except ValueError as e:
        raise ValueError(_keywords(str(e))) from None
    obj = json.loads(report)
    result = BenchResult(
        workload=obj["workload"], target=obj["target"], duration_s=obj["duration_s"],
        requests=obj["requests"], requests_per_s=obj["requests_per_s"],
        bytes_sent=obj["bytes_sent"], bytes_received=obj["bytes_received"],
        mb_per_s_sent=obj["mb_per_s_sent"], mb_per_s_received=obj["mb_per_s_received"],
        errors=obj["errors"], latency=Latency(**obj["latency"]),
        connect_time=Latency(**obj["connect_time"]) if "connect_time" in obj else None,
        time_to_first_byte=(Latency(**obj["time_to_first_byte"])
                            if "time_to_first_byte" in obj else None),
    )
    if failed and not result.requests:
        # Nothing got through: say why as the exception a socket would raise.
        kind = max(result.errors, key=result.errors.get)
        raise _FAILURES.get(kind, OSError)(
            f"bench {workload} {target}: every request failed ({kind}, {failed} times)")
    return result


def bench_echo(host: str, port: Optional[int] = None, *, connections: int = 10,
               seconds: float = 3.0, count: Optional[int] = None, size: int = 64,
               pipeline: int = 1, timeout: float = 5.0) -> BenchResult:
    """Round trips against an echo server: `connections` clients, each
    sending `size`-byte messages (`pipeline` in flight) and checking every
    answer, for `seconds` or `count` round trips. Failures are counted in
    `errors`; only a run where every request failed raises."""
    return _bench("echo", _endpoint(host, port), seconds, count, timeout,
                  ["-c", str(connections), "-s", str(size), "--pipeline", str(pipeline)])


def bench_stream(host: str, port: Optional[int] = None, *, connections: int = 1,
                 seconds: float = 3.0, send_only: bool = False,
                 timeout: float = 5.0) -> BenchResult:
    """Bulk streams to an echo server (or, `send_only`, a discard server):
    MB/s each way, the echoed bytes checked."""
    flags = ["-P", str(connections)] + (["--send-only"] if send_only else [])
    return _bench("stream", _endpoint(host, port), seconds, None, timeout, flags)


def bench_connect(host: str, port: Optional[int] = None, *, connections: int = 10,
                  seconds: float = 3.0, count: Optional[int] = None,
                  send: Optional[str] = None, timeout: float = 5.0) -> BenchResult:
    """Connections per second: connect, (send `send`,) read to EOF, close,
    by `connections` workers at once."""
    flags = ["-c", str(connections)] + (["--send", send] if send is not None else [])
    return _bench("connect", _endpoint(host, port), seconds, count, timeout, flags)


def bench_udp(host: str, port: Optional[int] = None, *, clients: int = 16,
              seconds: float = 3.0, count: Optional[int] = None, size: int = 64,
              timeout: float = 5.0) -> BenchResult:
    """UDP request/response: rate, loss (as `errors["timeout"]`), latency."""
    return _bench("udp", _endpoint(host, port), seconds, count, timeout,
                  ["-c", str(clients), "-s", str(size)])
