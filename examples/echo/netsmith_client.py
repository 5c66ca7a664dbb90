"""Seed 003's echo client, with netsmith.

    python3 examples/echo/netsmith_client.py [PORT]

The original's one `recv(1024)` returns whatever arrived first: on a busy
or distant link that is part of the echo. `recv_exact` waits for all of
it, and the timeout turns a silent server into netsmith.Timeout instead
of a hang.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 65432
message = b"Hello World"
with netsmith.connect("127.0.0.1", port, timeout=5) as t:
    t.send(message)
    data = t.recv_exact(len(message))

print("Received : {}".format(data))
