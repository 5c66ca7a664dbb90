"""Seed 000's simple client, with netsmith.

    python3 examples/simple_client/netsmith_client.py HOST PORT [REQUEST]

The original connects to a web server's port 80 and waits for it to
speak first. An HTTP server waits for a request, so the original waits
for ever. Here a REQUEST (with \\r\\n escapes) can be sent first, and
whatever the server says is read until it closes, within 5 seconds;
netsmith.Timeout keeps what had arrived (`e.partial`).
"""
import sys

import netsmith

host, port = sys.argv[1], int(sys.argv[2])
request = sys.argv[3].encode().decode("unicode_escape").encode() if len(sys.argv) > 3 else b""
with netsmith.connect(host, port, timeout=5) as t:
    if request:
        t.send(request)
    try:
        msg = t.recv_all()
    except netsmith.Timeout as e:
        msg = e.partial
print(msg.decode("utf-8", errors="replace"))
