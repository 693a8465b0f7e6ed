#!/usr/bin/env bash
# Sets Berth up on this machine and runs it: installs what it needs, builds it, starts berthd
# on /run/berth/berth.sock, and loads a demo image built from Debian's busybox-static
# (no internet needed). Run as root from the repository: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
[ -d node_modules ] || npm ci
npm run build

berth() { node dist/bin/berth.js "$@"; }

mkdir -p /etc/berth /var/log/berth
[ -f /etc/berth/berth.toml ] || cp docs/berth.example.toml /etc/berth/berth.toml

if ! berth version >/dev/null 2>&1; then
  nohup node dist/bin/berthd.js >>/var/log/berth/berthd.log 2>&1 &
  for _ in $(seq 1 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
fi
berth version

demo=$(mktemp --suffix=.tar)
node dist/tools/make-demo-image.js "$demo" docker.io/berth/demo:latest
berth image import "$demo"
rm -f "$demo"
berth images
echo
echo "berthd is running (log: /var/log/berth/berthd.log, socket: /run/berth/berth.sock)."
echo "Try: node dist/bin/berth.js inspecti docker.io/berth/demo:latest"
