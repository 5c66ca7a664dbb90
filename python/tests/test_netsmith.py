"""netsmith's Python package against real servers on loopback: its own
`serve`, servers written here with socketserver, a spawned program; the
timeout and refusal exceptions; a scan in a network namespace of its own;
threads; Ctrl-C."""

import hashlib
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


def test_tls_with_a_pin_and_a_wrong_pin():
    """`netsmith serve --tls` makes a self-signed certificate and prints its
    pin: the tube verifies it, and refuses another pin."""
    p = subprocess.Popen([BIN, "serve", "echo=0", "--tls", "--tcp"], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True)
    pin = port = None
    while port is None:
        line = p.stderr.readline()
        assert line, "netsmith serve --tls ended"
        if "--pin " in line:
            pin = line.split("--pin ")[1].strip()
        if line.startswith("listening on "):
            port = int(line.split()[2].rsplit(":", 1)[1])
    try:
        with netsmith.connect("127.0.0.1", port, tls=True, pin=pin, timeout=2) as t:
            t.send_line(b"over tls")
            assert t.recv_line() == b"over tls\n"
        wrong = "sha256:" + "00" * 32
        with pytest.raises(OSError, match="pin"):
            netsmith.connect("127.0.0.1", port, tls=True, pin=wrong)
    finally:
        p.terminate()
        p.wait(10)


def test_serve_in_process_moves_a_large_payload_and_counts_it():
    data = os.urandom(4 << 20)
    with netsmith.serve("echo", port=0) as s:
        assert s.address("echo").shown == f"127.0.0.1:{s.port}"
        with netsmith.connect("127.0.0.1", s.port, timeout=10) as t:
            t.send(data)
            t.shutdown()
            got = t.recv_all()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert s.totals["echo"]["bytes_in"] == len(data)
    assert s.totals["echo"]["connections"] == 1
    # Stopped: the port no longer answers.
    with pytest.raises(ConnectionRefusedError):
        netsmith.connect("127.0.0.1", s.port)


def test_serve_over_udp_and_unix(tmp_path):
    with netsmith.serve("echo", "qotd", port=0, tcp=False, udp=True, unix=str(tmp_path)) as s:
        udp = s.address("echo", "udp")
        with netsmith.connect(f"udp://127.0.0.1:{udp.port}", timeout=2) as t:
            t.send(b"one datagram")
            assert t.recv() == b"one datagram"
        with netsmith.connect(f"unix:{tmp_path}/qotd.sock", timeout=2) as t:
            assert t.recv_all().strip()
        # The seed's own UDP client, pointed at our port.
        seed = (ROOT / "tests" / "seeds" / "udp_echo_client.py").read_text()
        out = subprocess.run([sys.executable, "-c", seed.replace("12345", str(udp.port))],
                             capture_output=True, text=True, timeout=10)
        assert "b'Hello World' received from" in out.stdout, out
    assert not (tmp_path / "qotd.sock").exists()


def test_serve_refuses_a_port_in_use_and_bad_names():
    with netsmith.serve("echo", port=0) as s:
        with pytest.raises(OSError, match="address already in use"):
            netsmith.serve("echo", port=s.port)
    with pytest.raises(ValueError, match="nosuch"):
        netsmith.serve("nosuch")
    with pytest.raises(ValueError, match="70000"):
        netsmith.serve("echo", port=70000)


def test_bench_echo_against_a_python_server_counts_exactly():
    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while data := self.request.recv(65536):
                self.request.sendall(data)
    srv = _server(Echo)
    r = netsmith.bench_echo("127.0.0.1", srv.server_address[1], connections=4, count=400)
    srv.shutdown()
    assert r.requests == 400 and r.errors == {}, r
    assert r.bytes_received == 400 * 64
    assert r.latency.count == 400 and 0 < r.latency.p50_ms <= r.latency.max_ms


def test_bench_connect_and_udp_against_serve():
    with netsmith.serve("qotd", "echo=0", port=0, udp=True) as s:
        c = netsmith.bench_connect("127.0.0.1", s.address("qotd").port, seconds=0.5)
        assert c.requests > 0 and c.errors == {} and c.connect_time is not None
        u = s.address("echo", "udp")
        r = netsmith.bench_udp(u.host, u.port, clients=4, count=500)
        assert r.requests == 500 and r.errors == {}, r
    # Connections still open when the run ended are served, not counted.
    assert c.requests <= s.totals["qotd"]["connections"] <= c.requests + 10


def test_bench_raises_when_nothing_got_through_and_names_bad_keywords():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedError, match="refused"):
        netsmith.bench_echo("127.0.0.1", port, connections=1, seconds=0.3)
    with pytest.raises(ValueError, match="connections"):
        netsmith.bench_echo("127.0.0.1", port, connections=0)


def test_listen_accepts_a_tcp_client_and_a_udp_sender():
    with netsmith.listen(0) as ls:
        c = socket.create_connection(("127.0.0.1", ls.port))
        with ls.accept(timeout=5) as t:
            c.sendall(b"hello listener\n")
            assert t.recv_line() == b"hello listener\n"
            t.send_line(b"back")
            assert c.recv(100) == b"back\n"
        c.close()
        with pytest.raises(TimeoutError, match="no client"):
            ls.accept(timeout=0.2)
    # The seed's UDP receiver with a timeout, done with listen(udp=True).
    with netsmith.listen(0, udp=True, timeout=2) as ls:
        with pytest.raises(TimeoutError):
            ls.accept(timeout=0.1)
        u = socket.socket(type=socket.SOCK_DGRAM)
        u.sendto(b"ping", ("127.0.0.1", ls.port))
        with ls.accept(timeout=5) as t:
            assert t.recv() == b"ping"
            t.send(b"pong")
            assert u.recv(100) == b"pong"
        u.close()


def test_listen_on_a_unix_socket_removes_its_file(tmp_path):
    path = tmp_path / "l.sock"
    with netsmith.listen(f"unix:{path}") as ls:
        assert ls.port is None
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(path))
        with ls.accept(timeout=5) as t:
            c.sendall(b"over unix\n")
            assert t.recv_line() == b"over unix\n"
        c.close()
    assert not path.exists()
