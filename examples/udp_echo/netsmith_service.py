"""Seed 004's UDP echo service (the persistent one), with netsmith.

    python3 examples/udp_echo/netsmith_service.py [PORT]   # 12345 as in the seed

Answers each datagram to its sender, but never to its own port or to
another echo of ours (two echo services answering each other loop for
ever), and at most 1000 replies a second to one address (a forged
sender cannot aim it at a victim at full speed).
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345
with netsmith.serve("echo", port=port, tcp=False, udp=True) as s:
    print(f"udp echo on 127.0.0.1:{s.port}; Ctrl-C stops", flush=True)
    s.serve_forever()
print("datagrams:", s.totals["echo"]["datagrams"])
