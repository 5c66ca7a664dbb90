"""netsmith's Python package against real servers on loopback: its own
`serve`, servers written here with socketserver, a spawned program; the
timeout and refusal exceptions; a scan in a network namespace of its own;
threads; Ctrl-C."""

import os
import signal
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import netsmith

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("NETSMITH_BIN", str(ROOT / "target" / "debug" / "netsmith"))


@pytest.fixture(scope="module")
def serve():
    """`netsmith serve echo qotd`: {"echo": port, "qotd": port}."""
    p = subprocess.Popen([BIN, "serve", "echo=0", "qotd=0", "--tcp"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    ports = {}
    while len(ports) < 2:
        line = p.stderr.readline()
        assert line, "netsmith serve ended"
        if line.startswith("listening on "):
            addr, svc = line.split()[2], line.split()[3]
            ports[svc.strip("()").split("/")[0]] = int(addr.rsplit(":", 1)[1])
    yield ports
    p.terminate()
    p.wait(10)


class _Silent(socketserver.BaseRequestHandler):
    """Says `greeting`, then reads until the client goes."""
    greeting = b""

    def handle(self):
        self.request.sendall(self.greeting)
        while self.request.recv(1024):
            pass


def _server(handler):
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_echo_round_trip(serve):
    with netsmith.connect("127.0.0.1", serve["echo"], timeout=2) as t:
        t.send_line(b"Hello World")
        assert t.recv_line() == b"Hello World\n"
        t.send("a,b,")
        assert t.recv_until(b",") == b"a,"
        assert t.recv_exact(2) == b"b,"
        assert t.send_line_after(b"", b"x") == b""
        assert t.recv_line() == b"x\n"


def test_qotd_recv_all(serve):
    with netsmith.connect(f"127.0.0.1:{serve['qotd']}") as t:
        quote = t.recv_all()
    assert quote.endswith(b"\n") and len(quote) > 10


def test_a_timeout_keeps_what_arrived():
    class Partial(_Silent):
        greeting = b"220 almost"
    srv = _server(Partial)
    with netsmith.connect("127.0.0.1", srv.server_address[1], timeout=0.2) as t:
        with pytest.raises(netsmith.Timeout) as e:
            t.recv_line()
        assert e.value.partial == b"220 almost"
        assert isinstance(e.value, TimeoutError)
        assert t.buffered == b"220 almost"
        assert t.recv_until(b"almost") == b"220 almost"
    srv.shutdown()


def test_the_end_in_the_middle_is_closed_with_what_came():
    class Bye(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"bye")
    srv = _server(Bye)
    with netsmith.connect("127.0.0.1", srv.server_address[1], timeout=2) as t:
        with pytest.raises(netsmith.Closed) as e:
            t.recv_line()
        assert e.value.partial == b"bye" and isinstance(e.value, EOFError)
    srv.shutdown()


def test_a_refusal_is_connection_refused_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedError):
        netsmith.connect("127.0.0.1", port)


def test_spawn_talks_to_a_program():
    with netsmith.spawn("cat") as t:
        t.send_line(b"via cat")
        assert t.recv_line() == b"via cat\n"
        t.shutdown()
        assert t.recv_all() == b""


def test_resolve_localhost():
    assert "127.0.0.1" in netsmith.resolve("localhost")
    assert netsmith.resolve("::1") == ["::1"]


def test_threads_run_while_one_waits(serve):
    class Quiet(_Silent):
        pass
    srv = _server(Quiet)
    waiter = netsmith.connect("127.0.0.1", srv.server_address[1], timeout=1.5)
    errors = []

    def wait():
        try:
            waiter.recv_line()
        except netsmith.Timeout:
            errors.append("timeout")

    th = threading.Thread(target=wait)
    started = time.monotonic()
    th.start()
    with netsmith.connect("127.0.0.1", serve["echo"], timeout=2) as t:
        for i in range(200):
            t.send_line(b"%d" % i)
            assert t.recv_line() == b"%d\n" % i
    # The round trips finished while the other thread was still waiting.
    assert time.monotonic() - started < 1.5
    th.join()
    assert errors == ["timeout"]
    waiter.close()
    srv.shutdown()


def test_ctrl_c_interrupts_a_wait():
    srv = _server(_Silent)
    code = textwrap.dedent(f"""
        import netsmith, sys
        t = netsmith.connect("127.0.0.1", {srv.server_address[1]}, timeout=30)
        print("waiting", flush=True)
        t.recv_line()
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "waiting\n"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert "KeyboardInterrupt" in err, err
    srv.shutdown()


NAMESPACE_SCAN = """
import socket, netsmith
ls = [socket.socket(), socket.socket(socket.AF_INET6)]
ls[0].bind(("127.0.0.1", 0)); ls[1].bind(("::1", 0))
for s in ls: s.listen()
found = sorted((r.host, r.port) for r in netsmith.scan(["127.0.0.1", "::1"], ports="-")
               if r.state == "open")
want = sorted([("127.0.0.1", ls[0].getsockname()[1]), ("::1", ls[1].getsockname()[1])])
assert found == want, (found, want)
closed = [r for r in netsmith.scan("127.0.0.1", ports="1-100")]
assert all(r.state == "closed" and r.reason == "conn-refused" for r in closed), closed[:3]
try:
    list(netsmith.scan("192.0.2.1", ports="80"))
    raise SystemExit("the gate let a scan out")
except ValueError as e:
    assert "authorized=True" in str(e), e
print("ok")
"""


def test_scan_finds_exactly_its_own_listeners_in_a_namespace():
    """A network namespace of its own (unshare -n): only this test's two
    listeners exist, and no address outside loopback has a route."""
    out = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"',
         sys.executable, NAMESPACE_SCAN],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr
