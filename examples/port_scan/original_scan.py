# The port scan seed 004 points to has no code in the seed itself; this is
# the loop its socket API list (connect_ex) leads to, and the one
# bench/python.sh measures: one port after another, each a new socket.

import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
last = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
for port in range(1, last + 1):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if s.connect_ex((host, port)) == 0:
        print("Port", port, "is open")
    s.close()
