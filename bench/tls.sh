#!/usr/bin/env bash
# TLS throughput of one connection on loopback: netsmith's connect --tls to
# listen --tls against socat's OPENSSL-LISTEN/OPENSSL and ncat --ssl, each
# moving the same bytes the same way, the client verifying the server's
# certificate. It is bench/pipe.sh's measurement (same settings: REPS,
# SIZE, TOOLS, TIMEOUT, ...) with TLS=1; see there.
#
#   bench/tls.sh                  # REPS=3, 1 GiB per run
#   REPS=5 SIZE=$((256 << 20)) bench/tls.sh
set -euo pipefail
TLS=1 exec "$(dirname "${BASH_SOURCE[0]}")/pipe.sh" "$@"
