"""Names to addresses, with netsmith.

    python3 examples/names/netsmith_names.py [NAME]

`gethostbyname` gives one IPv4 address: a host with IPv6, or several
addresses, is cut to one. `netsmith.resolve` gives every address, in the
order netsmith.connect tries them (RFC 6724, Happy Eyeballs).
"""
import socket
import sys

import netsmith

name = sys.argv[1] if len(sys.argv) > 1 else "localhost"
print("this host:", socket.gethostname())
print(name, "is", ", ".join(netsmith.resolve(name)))
