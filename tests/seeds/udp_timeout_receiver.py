# From seed 004, Sockets with exceptions, verbatim.

import socket

with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
   try:
       s.bind(('127.0.0.1',12345))
       s.settimeout(3)
       data, addr = s.recvfrom(1024)
       print ("received:",addr)
       print ("obtained:", data)
   except socket.timeout :
       print ("No connection!")
