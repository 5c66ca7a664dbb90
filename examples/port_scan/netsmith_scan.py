"""A port scan, with netsmith.

    python3 examples/port_scan/netsmith_scan.py [HOST] [LAST_PORT]

Many ports at once (the loop waits out each one in turn, and a filtered
port costs it the whole timeout), every state told apart (closed,
filtered, unreachable), and no false "open" from the kernel connecting a
loopback socket to itself, which the loop reports when its own ephemeral
port is the one it probes. Beyond loopback it refuses to scan without
authorized=True: scan only networks whose owner said yes, in writing.
"""
import sys

import netsmith

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
last = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
for r in netsmith.scan(host, ports=f"1-{last}"):
    if r.state == "open":
        print("Port", r.port, "is open")
