"""Seed 001's greeting server, with netsmith.

    python3 examples/greeting/netsmith_server.py [PORT]   # 9999 as in the seed

Binds loopback, not whatever `gethostname()` resolves to (127.0.1.1 on
Debian, where `localhost` clients are refused, or a LAN address, open to
the network). The whole message is sent (`send` may send part), and many
clients are served at once.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
with netsmith.serve("banner", port=port, text="Thank you for connecting") as s:
    print(f"greeting on 127.0.0.1:{s.port}; Ctrl-C stops", flush=True)
    s.serve_forever()
print("connections:", s.totals["banner"]["connections"])
