"""Seed 003's echo server, with netsmith.

    python3 examples/echo/netsmith_server.py [PORT]     # 65432 as in the seed; 0: a free one

Every client is served, many at once, until Ctrl-C; the original served
one client and exited. Bytes go back as they come, half-close honoured,
and the totals are printed when it stops.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 65432
with netsmith.serve("echo", port=port) as s:
    print(f"echo on 127.0.0.1:{s.port}; Ctrl-C stops", flush=True)
    s.serve_forever()
print(s.totals["echo"])
