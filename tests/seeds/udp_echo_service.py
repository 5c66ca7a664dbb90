# From seed 004, UDP Sockets, Example #1 (the service), verbatim;
# the call at the bottom is added so that the file runs it.

import socket
def udp_echo_service():
    # set up the socket, and bind it to a port
    s = socket.socket(type=socket.SOCK_DGRAM)
    s.bind(('127.0.0.1',12345))
    # waiting to receive data; a blocking call
    print('receiving...')
    data, address = s.recvfrom(4096)
    # Received something!
    print('received',data,'from',address)
    # Now we echo it back to sender
    s.sendto(data,address)
    print('sent',data)

udp_echo_service()
