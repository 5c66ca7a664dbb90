# Seeds 001 and 002: this machine's name, and a name's address, with the
# two calls they teach.

import socket
import sys

name = sys.argv[1] if len(sys.argv) > 1 else "localhost"
print("this host:", socket.gethostname())
print(name, "is", socket.gethostbyname(name))
