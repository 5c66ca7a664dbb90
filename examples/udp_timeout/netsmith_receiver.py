"""Seed 004's UDP receiver with a timeout, with netsmith.

    python3 examples/udp_timeout/netsmith_receiver.py [PORT]   # 12345 as in the seed

Waits 3 seconds for a datagram; after that, "No connection!". The first
sender becomes the peer, so an answer could go back with `t.send`.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345
with netsmith.listen(port, udp=True) as ls:
    print(f"waiting on udp://127.0.0.1:{ls.port}", flush=True)
    try:
        with ls.accept(timeout=3) as t:
            print("obtained:", t.recv())
    except TimeoutError:
        print("No connection!")
