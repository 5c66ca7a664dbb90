"""Echo server with socketserver.ThreadingTCPServer, as the socketserver
tutorials write it: a thread per connection.

    python3 threaded_echo.py PORT [--daytime]

Serves TCP echo on 127.0.0.1:PORT; with --daytime, each connection gets
the time as ctime() gives it, then the connection closes. A peer for
bench/serve.sh.
"""

import socketserver
import sys
import time


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(1024)
            if not data:
                break
            self.request.sendall(data)


class DaytimeHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall((time.ctime() + "\r\n").encode())


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    handler = DaytimeHandler if "--daytime" in sys.argv[2:] else EchoHandler
    with Server(("127.0.0.1", int(sys.argv[1])), handler) as server:
        server.serve_forever()
