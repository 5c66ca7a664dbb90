"""Seed 004's UDP echo client, with netsmith.

    python3 examples/udp_echo/netsmith_client.py [PORT] [TEXT]

UDP loses datagrams without a word: the original's `recvfrom` then waits
for ever. Here the answer comes within 2 seconds or netsmith.Timeout
says so, and the socket is connected, so only the server's datagrams are
taken as its answer. With no TEXT it asks, as the seed's second client.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345
text = sys.argv[2] if len(sys.argv) > 2 else input("Text to send: ")
with netsmith.connect(f"udp://127.0.0.1:{port}", timeout=2) as t:
    t.send(text.encode())
    try:
        print(t.recv(), "received from", ("127.0.0.1", port))
    except netsmith.Timeout:
        sys.exit("no answer within 2 s: the datagram or its answer was lost")
    except ConnectionRefusedError:
        sys.exit(f"nothing answers on udp port {port} (the host said port unreachable)")
