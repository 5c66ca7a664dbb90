#!/usr/bin/env bash
# The test command (README and CI run exactly this): installs the test peers
# when they are missing, then checks formatting and lints, then runs every
# test. A missing peer is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A peers=(
  [ncat]=ncat [socat]=socat [nc.openbsd]=netcat-openbsd [python3]=python3
  [nft]=nftables [ip]=iproute2 [unshare]=util-linux [setpriv]=util-linux
  [getent]=libc-bin [inetutils-inetd]=inetutils-inetd [openssl]=openssl
  [update-ca-certificates]=ca-certificates
  [tshark]=tshark [tcpdump]=tcpdump [timeout]=coreutils
  [ping]=iputils-ping [tc]=iproute2
  [microsocks]=microsocks [danted]=dante-server [curl]=curl [bc]=bc
)
missing=()
for cmd in "${!peers[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${peers[$cmd]}")
done
[ -f /etc/services ] || missing+=(netbase)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: missing test peers; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "installing test peers: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
cargo test --doc --locked

# The Python package (python/): built from this repository against the
# same library crate, then its tests, against the binary built above.
(cd python && cargo fmt -- --check && cargo clippy --locked -- -D warnings)
python3 -m pip install --quiet --disable-pip-version-check ./python pytest
NETSMITH_BIN="$PWD/target/debug/netsmith" python3 -m pytest -q python/tests
