#!/usr/bin/env bash
# System packages Berth needs on Debian 12: the build toolchain for the native addon (and
# ISA-L, its gzip inflater for image layers),
# protoc (generated-code check), and what the tests and the benchmark run for real.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "install-deps.sh: run as root" >&2; exit 1; fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-deps.sh: Berth needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  g++ make python3 protobuf-compiler libisal-dev \
  busybox-static zstd openssl ca-certificates \
  docker-registry containerd runc conmon containernetworking-plugins iproute2 iptables util-linux \
  rsyslog criu
# The Docker Engine backend's tests and BACKEND=docker conformance start their own dockerd (own
# socket, data root, containerd; no bridge, no iptables). The package's postinst would start a
# system dockerd on /var/run/docker.sock with docker0 and iptables rules: policy-rc.d forbids it.
if ! command -v dockerd >/dev/null; then
  policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then
    apt-get install -y -q --no-install-recommends docker.io
  else
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
    apt-get install -y -q --no-install-recommends docker.io
    rm -f "$policy"
    trap - EXIT
  fi
  # Nor later (a reboot, socket activation): the tests never want the system engine.
  if [ -d /run/systemd/system ]; then systemctl disable docker.service docker.socket 2>/dev/null || true; fi
fi
# CheckpointContainer: a CRIU that works on this kernel (see the script).
bash "$(dirname "$0")/install-criu.sh"
# scripts/conformance.sh: what cri-tools' critest-images.sh builds critest's images with.
apt-get install -y -q --no-install-recommends curl jq gcc libc6-dev catatonit procps
# The bench's pull floor (scripts/pull-floor.c: ISA-L and OpenSSL's SHA-256, with the gcc above).
apt-get install -y -q --no-install-recommends libssl-dev
# gVisor's runsc: the sandbox RuntimeClass handler's tests and its critest pass (HANDLER=runsc).
apt-get install -y -q --no-install-recommends runsc
# kubectl drives berthd's streaming server as a Go client in the tests. Machines that come
# with one (e.g. the Google Cloud CLI's) keep it; elsewhere Debian's kubectl 1.20 (SPDY only).
if ! command -v kubectl >/dev/null; then
  apt-get install -y -q --no-install-recommends kubernetes-client
fi
