#!/usr/bin/env bash
# Sets Berth up on this machine and runs it: installs what it needs, builds it, installs a
# default CNI network if there is none, starts berthd on /run/berth/berth.sock, loads a demo
# image built from Debian's busybox-static (no internet needed) and runs it as a pod.
# Run as root from the repository: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
[ -d node_modules ] || npm ci
npm run build

berth() { node dist/bin/berth.cjs "$@"; }

mkdir -p /etc/berth /var/log/berth
[ -f /etc/berth/berth.toml ] || cp docs/berth.example.toml /etc/berth/berth.toml
node dist/tools/install-cni.js /etc/cni/net.d

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

if ! berth ps | grep -q ' demo '; then
  berth rmp -f demo >/dev/null 2>&1 || true
  berth run -d --name demo --publish 8080:8080 docker.io/berth/demo:latest
fi
berth pods
berth ps
ip=$(berth inspectp demo | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).status.network.ip))')
for _ in $(seq 1 50); do
  node -e "require('http').get('http://$ip:8080/',r=>r.pipe(process.stdout)).on('error',()=>process.exit(1))" && break
  sleep 0.1
done
echo
echo "berthd is running (log: /var/log/berth/berthd.log, socket: /run/berth/berth.sock)."
echo "The demo pod serves http://$ip:8080/ (host port 8080 on the berth0 gateway, 10.88.0.1)."
echo "Try: node dist/bin/berth.cjs logs demo; node dist/bin/berth.cjs exec demo -- ps"
