"""netsmith from Python: the socket tutorials' programs in a few lines.

    import netsmith
    with netsmith.connect("127.0.0.1", 7, timeout=2) as t:
        t.send_line(b"Hello World")
        print(t.recv_line())
    for r in netsmith.scan("127.0.0.1", ports="1-1024"):
        print(r.port, r.state, r.reason)

Everything network-related is netsmith's Rust library (`netsmith::tube`,
`netsmith::scan`, its resolver), called with the GIL released: threads
run while one waits, and Ctrl-C interrupts a wait with KeyboardInterrupt.
"""

from dataclasses import dataclass
from typing import Iterator, List, Optional, Union

from . import _native
from ._native import Closed, Timeout

__all__ = ["Tube", "Timeout", "Closed", "ScanResult", "connect", "spawn", "resolve", "scan"]

Bytes = Union[bytes, bytearray, memoryview, str]


def _b(data: Bytes) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


class Tube:
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

    def __enter__(self) -> "Tube":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(host: str, port: Optional[int] = None, *, timeout: float = 5.0,
            tls: bool = False, pin: Optional[str] = None, ca: Optional[str] = None,
            insecure: bool = False) -> Tube:
    """Connects to `host`:`port`, or to an endpoint of netsmith's grammar
    given alone ("127.0.0.1:7", "tls://example.org:443", "udp://127.0.0.1:53",
    "unix:/run/app.sock"). Names get every address, tried as Happy Eyeballs
    says. `tls=True` (or a tls:// endpoint) verifies the server against the
    system's roots, `ca`, or `pin` ("sha256:..."). A refusal raises
    ConnectionRefusedError, as a socket would."""
    if port is not None:
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        endpoint = f"{shown}:{port}"
    else:
        endpoint = host
    if tls and not endpoint.startswith("tls://"):
        endpoint = "tls://" + endpoint
    return Tube(_native.connect(endpoint, pin=pin, ca=ca, insecure=insecure), timeout)


def spawn(command: str, *, timeout: float = 5.0) -> Tube:
    """Starts `command` (split as a shell would, no shell involved) with its
    stdin and stdout as the tube, like pwntools' `process`."""
    return Tube(_native.spawn(command), timeout)


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
