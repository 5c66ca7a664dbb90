"""Seed 001's greeting client, with netsmith.

    python3 examples/greeting/netsmith_client.py [PORT]

Reads until the server closes (a greeting longer than 1024 bytes, or one
that arrives in pieces, is not cut short), within a timeout.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
with netsmith.connect("localhost", port, timeout=5) as t:
    msg = t.recv_all()

print(msg.decode("utf-8", errors="replace"))
