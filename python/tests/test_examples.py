"""examples/: each tutorial system rewritten with netsmith, run against
the original it replaces (the seeds' own programs, with the port changed
to one the test picked): netsmith's server with the original client, and
the original server with netsmith's client, same output."""

import http.server
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(type=kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port, udp=False):
    """Whether a socket is bound to `port` on loopback (read from
    /proc/net, so the check uses up no one-client server's client)."""
    table = Path("/proc/net/udp" if udp else "/proc/net/tcp").read_text().splitlines()[1:]
    for row in table:
        fields = row.split()
        local, state = fields[1], fields[3]
        if int(local.split(":")[1], 16) == port and (udp or state == "0A"):
            return True
    return False


def wait_listening(port, proc, udp=False):
    for _ in range(400):
        if listening(port, udp):
            return
        assert proc.poll() is None, proc.communicate()
        threading.Event().wait(0.025)
    raise AssertionError(f"nothing listens on {port}")


def original(name, edits):
    """The original program's text with `edits` applied; each must match."""
    text = (EX / name).read_text()
    for old, new in edits:
        assert old in text, (name, old)
        text = text.replace(old, new)
    return text


def run(args, stdin=None):
    out = subprocess.run([sys.executable, *args], input=stdin, capture_output=True,
                         text=True, timeout=30)
    return out


def start_ours(name, *args):
    """One of our servers; it prints "... on 127.0.0.1:PORT" when ready."""
    p = subprocess.Popen([sys.executable, str(EX / name), *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    assert " on " in first, (first, p.stderr.read() if p.poll() is not None else "")
    return p, int(re.search(r"127\.0\.0\.1:(\d+)", first).group(1))


def stop(p):
    """SIGTERM (which serve_forever takes as Ctrl-C): the totals come out
    on stdout. Not SIGINT: a shell without job control starts background
    commands with SIGINT ignored, and the test could run under one."""
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    return out


def start_original(name, edits, port, udp=False):
    p = subprocess.Popen([sys.executable, "-c", original(name, edits)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_listening(port, p, udp)
    return p


def test_echo_both_ways():
    server, port = start_ours("echo/netsmith_server.py", 0)
    out = run(["-c", original("echo/original_client.py", [("65432", str(port))])])
    assert out.stdout == "Received : b'Hello World'\n", out
    assert "'connections': 1" in stop(server)

    port = free_port()
    server = start_original("echo/original_server.py", [("65432", str(port))], port)
    out = run([str(EX / "echo/netsmith_client.py"), str(port)])
    assert out.stdout == "Received : b'Hello World'\n", out
    assert "Connected by" in server.communicate(timeout=10)[0]


def test_greeting_both_ways():
    server, port = start_ours("greeting/netsmith_server.py", 0)
    edits = [("socket.gethostname()", "'127.0.0.1'"), ("9999", str(port))]
    out = run(["-c", original("greeting/original_client.py", edits)])
    assert out.stdout == "Thank you for connecting\n", out
    assert stop(server).endswith("connections: 1\n")

    port = free_port()
    edits = [("socket.gethostname()", "'127.0.0.1'"), ("9999", str(port))]
    server = start_original("greeting/original_server.py", edits, port)
    out = run([str(EX / "greeting/netsmith_client.py"), str(port)])
    server.kill()
    server.communicate()
    assert out.stdout == "Thank you for connecting\n", out


def test_qotd_both_ways():
    server, port = start_ours("qotd/netsmith_service.py", 0)
    out = run(["-c", original("qotd/original_client.py", [("12345", str(port))])])
    last = out.stdout.splitlines()[-1]
    assert last.startswith("bytearray(b'") and len(last) > 20, out
    stop(server)

    port = free_port()
    edits = [("s.bind(('',12345))", f"s.bind(('127.0.0.1',{port}))")]
    server = start_original("qotd/original_service.py", edits, port)
    out = run([str(EX / "qotd/netsmith_client.py"), str(port)])
    server.kill()
    server.communicate()
    assert out.stdout == "Object oriented programs are offered as alternatives to correct ones.\n"


def test_udp_echo_both_ways_and_no_one_there():
    server, port = start_ours("udp_echo/netsmith_service.py", 0)
    out = run(["-c", original("udp_echo/original_client.py", [("12345", str(port))])])
    assert f"b'Hello World' received from ('127.0.0.1', {port})" in out.stdout, out
    out = run(["-c", original("udp_echo/original_client_prompt.py", [("12345", str(port))])],
              stdin="typed\n")
    assert f"b'typed' received from ('127.0.0.1', {port})" in out.stdout, out
    out = run([str(EX / "udp_echo/netsmith_client.py"), str(port)], stdin="asked\n")
    assert out.stdout == f"Text to send: b'asked' received from ('127.0.0.1', {port})\n", out
    assert stop(server) == "datagrams: 3\n"

    port = free_port(socket.SOCK_DGRAM)
    server = start_original("udp_echo/original_service_persistent.py",
                            [("12345", str(port))], port, udp=True)
    out = run([str(EX / "udp_echo/netsmith_client.py"), str(port), "hi"])
    server.kill()
    server.communicate()
    assert out.stdout == f"b'hi' received from ('127.0.0.1', {port})\n", out

    # Nothing there: the original would wait for ever; ours says so.
    out = run([str(EX / "udp_echo/netsmith_client.py"), str(free_port(socket.SOCK_DGRAM)), "x"])
    assert out.returncode == 1 and "nothing answers" in out.stderr, out


def test_udp_timeout_receiver_hears_a_sender_or_says_no_connection():
    p = subprocess.Popen([sys.executable, str(EX / "udp_timeout/netsmith_receiver.py"), "0"],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().rsplit(":", 1)[1])
    with socket.socket(type=socket.SOCK_DGRAM) as s:
        s.sendto(b"anyone?", ("127.0.0.1", port))
    assert p.communicate(timeout=10)[0] == "obtained: b'anyone?'\n"

    out = run([str(EX / "udp_timeout/netsmith_receiver.py"), "0"])
    assert out.stdout.endswith("No connection!\n"), out


SCAN_BOTH = """
import socket, subprocess, sys
ls = []
for port in (22, 80, 631):
    s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen(); ls.append(s)
for prog in sys.argv[1:]:
    out = subprocess.run([sys.executable, prog, "127.0.0.1", "1024"],
                         capture_output=True, text=True, timeout=60)
    print(prog.rsplit("/", 1)[1], out.stdout.replace("\\n", ";"))
"""


def test_port_scans_agree_in_a_namespace_of_their_own():
    out = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$@"',
         sys.executable, SCAN_BOTH, str(EX / "port_scan/original_scan.py"),
         str(EX / "port_scan/netsmith_scan.py")],
        capture_output=True, text=True, timeout=120)
    want = "Port 22 is open;Port 80 is open;Port 631 is open;"
    assert out.stdout == f"original_scan.py {want}\nnetsmith_scan.py {want}\n", out


def test_names():
    ours = run([str(EX / "names/netsmith_names.py"), "localhost"]).stdout.splitlines()
    theirs = run([str(EX / "names/original_names.py"), "localhost"]).stdout.splitlines()
    assert ours[0] == theirs[0] == f"this host: {socket.gethostname()}"
    assert theirs[1] == "localhost is 127.0.0.1"
    assert "127.0.0.1" in ours[1].split(" is ")[1].split(", ")


def test_simple_client_sends_a_request_first():
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from http.server\n")

        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    out = run([str(EX / "simple_client/netsmith_client.py"), "127.0.0.1",
               str(srv.server_address[1]), r"GET / HTTP/1.0\r\n\r\n"])
    srv.shutdown()
    # (Text mode reads the server's CRLF as LF.)
    assert out.stdout.startswith("HTTP/1.0 200 OK\n"), out
    assert out.stdout.endswith("hello from http.server\n\n"), out
