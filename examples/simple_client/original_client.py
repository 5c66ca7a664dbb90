#!/usr/bin/python3
# From seed 000 ("Simple client"), verbatim. It talks to a host on the
# Internet, so the tests never run it; the netsmith version takes a host
# and port instead.
import socket

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM) # Socket Object
#localhost = socket.gethostname() # Localhost name!
port = 80
client.connect(("www.domain.com", port)) # double parenthesises the socket lib would treat this as one argument

msg = client.recv(1024) # Defines a buffer size of 1024 to receive 1024 bits of data 
client.close()
print (msg.decode('ascii')) # decodes the buffer in a format! Beware ascii is not modern
