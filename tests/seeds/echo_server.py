# From seed 003 ("Socket Server"), copied verbatim except for three fixes
# without which it does not run:
# - the block was indented by two tabs (it sat in a Markdown list): dedented;
# - it used socket without importing it: "import socket" added;
# - it used `s.` where it meant `stream.` (s is never defined): s.bind,
#   s.listen and s.accept are now stream.bind, stream.listen, stream.accept.

import socket

HOST = "127.0.0.1"  # This is your host IP address (for Server)
PORT = 65432        # This is the port to listen on (non-priviledged ports are > 1023)

stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
with stream:
	# Use the socket object without calling s.close()
	stream.bind( (HOST,PORT) )	# Bind stream to a socket [hint : A socket is basically the Host IP Address + Port number together, i.e. (HOST_IP, PORT)]
	stream.listen()		# Start Listening to the socket stream
	conn, addr = stream.accept()	# Accept connection received and get the address

	"""
	NOTE:
		- you now have a new socket object known as 'conn'
	"""
	with conn:
		print("Connected by {}".format(addr))
		while True:
			# Continuous loop and keep connection open until break condition is met
			data = conn.recv(1024) # Receive data from connection

			# - if the connection receives an empty bytes object (b'')
			#	- that signals that the client closed the connection and the loop is terminated
			if not data:
				break
			conn.sendall(data)
