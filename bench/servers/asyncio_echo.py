"""Echo server with asyncio streams, as the asyncio tutorials write it.

    python3 asyncio_echo.py PORT [--udp]

Serves TCP echo on 127.0.0.1:PORT; with --udp, UDP echo on the same port
number too (a DatagramProtocol). A peer for bench/serve.sh.
"""

import asyncio
import sys


async def handle_echo(reader, writer):
    while True:
        data = await reader.read(1024)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


class EchoUDP(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def main(port, udp):
    if udp:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(EchoUDP, local_addr=("127.0.0.1", port))
    server = await asyncio.start_server(handle_echo, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), "--udp" in sys.argv[2:]))
