# From seed 004, UDP Sockets, Example #2 (the client), verbatim;
# the call at the bottom is added so that the file runs it.

import socket
def udp_echo_client():
    s = socket.socket(type=socket.SOCK_DGRAM)
    # the sendto was changed to prompt the user for input
    # Note the encoding; remember we have to send a bytes object
    s.sendto(input("Text to send: ").encode("ascii"),('127.0.0.1',12345))
    data,address = s.recvfrom(4096)
    print(data,'received from',address)

udp_echo_client()
