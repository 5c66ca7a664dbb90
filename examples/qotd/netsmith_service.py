"""Seed 004's quote-of-the-day service, with netsmith.

    python3 examples/qotd/netsmith_service.py [PORT] [FORTUNE_FILE]  # 12345 as in the seed

Listens on loopback (the seed's '' is every interface), serves clients at
once, and takes its quotes from a fortune file (quotes between lines of
%) or its own list.
"""
import sys

import netsmith

port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345
quotes = sys.argv[2] if len(sys.argv) > 2 else None
with netsmith.serve("qotd", port=port, quotes=quotes) as s:
    print(f"qotd on 127.0.0.1:{s.port}; Ctrl-C stops", flush=True)
    s.serve_forever()
