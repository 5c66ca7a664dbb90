"""Seed 004's quote-of-the-day client, with netsmith.

    python3 examples/qotd/netsmith_client.py [PORT]

The original reads 4 bytes per call until EOF, and waits for ever if the
server never closes. `recv_all` reads to the end, within the timeout.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345
with netsmith.connect("127.0.0.1", port, timeout=5) as t:
    print(t.recv_all().decode())
