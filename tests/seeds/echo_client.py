# From seed 003 ("Socket Client"), copied verbatim except for two fixes
# without which it does not run:
# - the block was indented by two tabs (it sat in a Markdown list): dedented;
# - it used socket without importing it: "import socket" added.

import socket

HOST = "127.0.0.1"  # This is your host IP address (for Server)
PORT = 65432        # This is the port to listen on (non-priviledged ports are > 1023)

stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

with stream:
	stream.connect( (HOST, PORT) )  # Bind stream to a socket [hint : A socket is basically the Host IP Address + Port number together, i.e. (HOST_IP, PORT)]
	stream.sendall(b"Hello World")  # Send to all addresses in the connection the data
	data = stream.recv(1024)        # Receive data from connection

print("Received : {}".format(data))
