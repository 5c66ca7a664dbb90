# From seed 004, TCP Sockets, Quote of the Day Service, verbatim;
# the call at the bottom is added so that the file runs it.

import socket

def tcp_qotd_service():
    s = socket.socket()
    s.bind(('',12345))
    s.listen()
    # the loop makes it work continously; i.e. it is now a "service"
    while True:
        client_socket, address = s.accept()
        quote = b'Object oriented programs are offered as alternatives to correct ones.'
        # .sendall() will divide up your message if it is larger than the buffer,
        # it sends until complete
        client_socket.sendall(quote)
        client_socket.close()

tcp_qotd_service()
