#!/usr/bin/env bash
# CRI conformance: runs critest (cri-tools v1.29.0) against berthd, offline, and fails unless every
# spec that is not on the allowed-skip list (test/conformance-skips.txt) passes.
#
#   bash scripts/conformance.sh                     # berthd on temp dirs, built from this repo
#   BACKEND=docker bash scripts/conformance.sh       # berthd --backend docker on a private dockerd
#                                                   # (own socket, data root and containerd; no
#                                                   # bridge, no iptables), started and removed here
#   CRI_ENDPOINT=unix:///run/containerd/containerd.sock bash scripts/conformance.sh
#                                                   # any running CRI runtime (its registry config
#                                                   # must mirror the upstream hosts, see below)
#
# What it sets up, all torn down on exit (also on failure or Ctrl-C):
#   - Debian's docker-registry on 127.0.0.1:$REGISTRY_PORT (data in the temp dir), holding the
#     stand-ins for every image critest pulls (../shared/cri-tools/critest-images.sh; a user gets
#     the same images from the upstream registries);
#   - berthd (unless CRI_ENDPOINT is set) with its root, state, socket and CNI config in a temp dir,
#     mirroring registry.k8s.io, gcr.io and public.ecr.aws to that registry; CNI: bridge
#     $CNI_BRIDGE on $CNI_SUBNET with portmap (hostPort on 127.0.0.1 must work).
# It leaves no process, mount, veth, bridge or iptables chain behind.
#
# Env: CRITEST (default ../shared/cri-tools/critest), CRICTL (default beside critest),
#      CRI_ENDPOINT, REGISTRY_PORT (5055), CNI_BRIDGE (berthct0), CNI_SUBNET (10.99.0.0/16),
#      CRITEST_ARGS (extra critest flags, e.g. --ginkgo.focus=…), KEEP_TMP=1 keeps the temp dir,
#      HANDLER=runsc runs every pod under berthd's gVisor handler (critest --runtime-handler=runsc;
#      needs /usr/bin/runsc) with test/conformance-skips-runsc.txt skipped too.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

CRITEST=${CRITEST:-$repo/../shared/cri-tools/critest}
CRICTL=${CRICTL:-$(dirname "$CRITEST")/crictl}
IMAGES_SCRIPT=${IMAGES_SCRIPT:-$(dirname "$CRITEST")/critest-images.sh}
REGISTRY_PORT=${REGISTRY_PORT:-5055}
CNI_BRIDGE=${CNI_BRIDGE:-berthct0}
CNI_SUBNET=${CNI_SUBNET:-10.99.0.0/16}
BACKEND=${BACKEND:-native}
case "$BACKEND" in
  native) SKIPS_FILES=("$repo/test/conformance-skips.txt") ;;
  docker) SKIPS_FILES=("$repo/test/conformance-skips-docker.txt") ;;
  *) echo "conformance: BACKEND must be native or docker" >&2; exit 1 ;;
esac
HANDLER=${HANDLER:-}
case "$HANDLER" in
  '') ;;
  runsc)
    if [ "$BACKEND" != native ]; then echo "conformance: HANDLER=runsc needs BACKEND=native" >&2; exit 1; fi
    SKIPS_FILES+=("$repo/test/conformance-skips-runsc.txt") ;;
  *) echo "conformance: HANDLER must be empty (runc) or runsc" >&2; exit 1 ;;
esac
# 83 specs in v1.29.0, 5 of them benchmarks (not run without -benchmark): 78 conformance specs.
CONFORMANCE_SPECS=78

say() { echo "conformance: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (critest creates pods, networks and mounts)"
[ -x "$CRITEST" ] || die "no critest at $CRITEST (set CRITEST; get it from the cri-tools v1.29.0 release)"
[ -f "$IMAGES_SCRIPT" ] || die "no $IMAGES_SCRIPT (the script that builds critest's images offline)"
command -v docker-registry >/dev/null || die "docker-registry missing: apt-get install -y docker-registry"
[ "$HANDLER" != runsc ] || [ -x /usr/bin/runsc ] || die "HANDLER=runsc needs /usr/bin/runsc: apt-get install -y runsc"

tmp=$(mktemp -d /tmp/berth-ct.XXXXXX)
registry_pid=""
berthd_pid=""
dockerd_pid=""
containerd_pid=""
chains_before=""

# --- iptables: remember user-defined chains, remove the ones CNI plugins added (and jumps to them)
ipt_chains() { # family(iptables|ip6tables) -> "table chain" lines
  "$1-save" 2>/dev/null | awk '/^\*/{t=substr($0,2)} /^:/{c=substr($1,2); if ($2=="-") print t, c}' | sort
}
ipt_cleanup() {
  local fam=$1 before=$2 table chain line
  comm -13 <(printf '%s\n' "$before" | sort) <(ipt_chains "$fam") | while read -r table chain; do
    [ -n "$chain" ] || continue
    "$fam-save" -t "$table" 2>/dev/null | grep -E "^-A [^ ]+ .*-j $chain( |\$)" | while read -r line; do
      eval "$fam -t $table -D ${line#-A }" 2>/dev/null || true
    done
  done
  # A second pass deletes the chains once nothing jumps into them any more.
  comm -13 <(printf '%s\n' "$before" | sort) <(ipt_chains "$fam") | while read -r table chain; do
    [ -n "$chain" ] || continue
    "$fam" -t "$table" -F "$chain" 2>/dev/null || true
  done
  comm -13 <(printf '%s\n' "$before" | sort) <(ipt_chains "$fam") | while read -r table chain; do
    [ -n "$chain" ] || continue
    "$fam" -t "$table" -X "$chain" 2>/dev/null || true
  done
}
chains_before4=$(ipt_chains iptables)
chains_before6=$(ipt_chains ip6tables)

cleanup() {
  local rc=$?
  set +e
  if [ -n "$berthd_pid" ]; then
    # Whatever critest left (it removes its own pods; a failed spec may not).
    "$CRICTL" --runtime-endpoint "unix://$tmp/berth.sock" rmp --all --force >/dev/null 2>&1
    kill -TERM "$berthd_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$berthd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$berthd_pid" 2>/dev/null
    # conmon and container processes under our state dir (none, unless a removal failed)
    for p in $(pgrep -f "$tmp/(state|root)" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    grep -o " $tmp/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    ip link del "$CNI_BRIDGE" 2>/dev/null
  fi
  if [ -n "$dockerd_pid" ]; then
    # Whatever is left in the private engine, then the engine and its containerd.
    for c in $(curl -fsS --unix-socket "$tmp/docker.sock" "http://docker/containers/json?all=1" 2>/dev/null | jq -r '.[].Id'); do
      curl -fsS -X DELETE --unix-socket "$tmp/docker.sock" "http://docker/containers/$c?force=1" >/dev/null 2>&1
    done
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 200); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dockerd_pid" 2>/dev/null
  fi
  if [ -n "$containerd_pid" ]; then
    kill -TERM "$containerd_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$containerd_pid" 2>/dev/null
  fi
  grep -o " $tmp/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  [ -n "$registry_pid" ] && kill -TERM "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  ipt_cleanup iptables "$chains_before4"
  ipt_cleanup ip6tables "$chains_before6"
  if [ "${KEEP_TMP:-}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- registry + images
mkdir -p "$tmp/registry"
cat >"$tmp/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $tmp/registry/data
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
docker-registry serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" || die "registry did not start: $(cat "$tmp/registry/log")"
say "pushing critest's images to 127.0.0.1:$REGISTRY_PORT"
REGISTRY=127.0.0.1:$REGISTRY_PORT WORK=${IMAGES_WORK:-/var/tmp/critest-images} bash "$IMAGES_SCRIPT" >"$tmp/images.log" 2>&1 ||
  die "critest-images.sh failed: $(tail -20 "$tmp/images.log")"

# --- a private Docker Engine (BACKEND=docker): never the host's /var/run/docker.sock
backend_toml=""
if [ "$BACKEND" = docker ] && [ -z "${CRI_ENDPOINT:-}" ]; then
  [ -x /usr/sbin/dockerd ] || die "dockerd missing: apt-get install -y docker.io (see scripts/install-deps.sh)"
  cat >"$tmp/containerd.toml" <<EOF
version = 2
root = "$tmp/containerd-root"
state = "$tmp/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
address = "$tmp/containerd.sock"
EOF
  containerd --config "$tmp/containerd.toml" >"$tmp/containerd.log" 2>&1 &
  containerd_pid=$!
  echo '{}' >"$tmp/daemon.json"
  dockerd --config-file="$tmp/daemon.json" --host="unix://$tmp/docker.sock" --data-root="$tmp/docker" \
    --exec-root="$tmp/docker-exec" --pidfile="$tmp/docker.pid" --containerd="$tmp/containerd.sock" \
    --bridge=none --iptables=false --ip-masq=false --ip6tables=false >"$tmp/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --unix-socket "$tmp/docker.sock" http://docker/version 2>/dev/null && break
    kill -0 "$dockerd_pid" 2>/dev/null || die "dockerd exited: $(tail -20 "$tmp/dockerd.log")"
    sleep 0.1
  done
  curl -fsS -o /dev/null --unix-socket "$tmp/docker.sock" http://docker/version || die "dockerd did not start"
  backend_toml="backend = \"docker\"
docker_endpoint = \"unix://$tmp/docker.sock\""
fi

# --- berthd
endpoint=${CRI_ENDPOINT:-}
if [ -z "$endpoint" ]; then
  [ -f dist/bin/berthd.js ] || die "build first: npm run build"
  mkdir -p "$tmp/cni" "$tmp/logs"
  cat >"$tmp/cni/10-conformance.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "berth-conformance",
  "plugins": [
    { "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$CNI_SUBNET" }]], "routes": [{ "dst": "0.0.0.0/0" }],
                "dataDir": "$tmp/cni/ipam" } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
  mirror="[\"http://127.0.0.1:$REGISTRY_PORT\"]"
  cat >"$tmp/berth.toml" <<EOF
$backend_toml
root = "$tmp/root"
state = "$tmp/state"
listen = "$tmp/berth.sock"
log_level = "${BERTHD_LOG_LEVEL:-info}"
[registry.mirrors."registry.k8s.io"]
endpoints = $mirror
[registry.mirrors."gcr.io"]
endpoints = $mirror
[registry.mirrors."public.ecr.aws"]
endpoints = $mirror
[runtime.handlers.runc]
runtime_root = "$tmp/state/runc"
[runtime.handlers.runsc]
runtime_path = "/usr/bin/runsc"
runtime_root = "$tmp/state/runsc"
runtime_type = "sandbox"
runtime_args = ["--oci-seccomp"]
[cni]
conf_dirs = ["$tmp/cni"]
EOF
  node dist/bin/berthd.js --config "$tmp/berth.toml" >"$tmp/berthd.log" 2>&1 &
  berthd_pid=$!
  endpoint="unix://$tmp/berth.sock"
  for _ in $(seq 1 100); do
    "$CRICTL" --runtime-endpoint "$endpoint" version >/dev/null 2>&1 && break
    kill -0 "$berthd_pid" 2>/dev/null || die "berthd exited: $(tail -20 "$tmp/berthd.log")"
    sleep 0.1
  done
  "$CRICTL" --runtime-endpoint "$endpoint" version >/dev/null || die "berthd did not answer on $endpoint"
fi

# --- critest
skips=()
skip_re=""
while IFS= read -r line; do
  case "$line" in '' | '#'*) continue ;; esac
  spec=${line%%|*}
  spec=${spec%"${spec##*[![:space:]]}"}
  skips+=("$spec")
  skip_re+="${skip_re:+|}$spec"
done < <(cat "${SKIPS_FILES[@]}")
say "critest against $endpoint (backend $BACKEND${HANDLER:+, handler $HANDLER}); skipped (see ${SKIPS_FILES[*]}): ${#skips[@]}"
out="$tmp/critest.out"
set +e
# shellcheck disable=SC2086 # CRITEST_ARGS is a list of flags
"$CRITEST" --runtime-endpoint "$endpoint" --image-endpoint "$endpoint" \
  ${HANDLER:+--runtime-handler="$HANDLER"} --ginkgo.skip="$skip_re" --ginkgo.no-color ${CRITEST_ARGS:-} 2>&1 | tee "$out" |
  grep -a -E '^ *\[(FAIL|PANICKED)\]|^(Ran|FAIL|SUCCESS)|Passed \|' >&2
critest_rc=${PIPESTATUS[0]}
set -e
ran=$(sed -nE 's/^Ran ([0-9]+) of ([0-9]+) Specs.*/\1/p' "$out" | tail -1)
passed=$(sed -nE 's/.* ([0-9]+) Passed \| ([0-9]+) Failed.*/\1/p' "$out" | tail -1)
failed=$(sed -nE 's/.* ([0-9]+) Passed \| ([0-9]+) Failed.*/\2/p' "$out" | tail -1)
expected=$((CONFORMANCE_SPECS - ${#skips[@]}))
if [ -z "$passed" ]; then
  tail -40 "$out" >&2
  die "critest printed no summary (exit $critest_rc)"
fi
echo "critest: ${passed} passed, ${failed} failed"
if [ -n "$berthd_pid" ] && [ "$failed" != 0 ]; then
  say "berthd log (errors):"
  grep -a -E '"level":(50|60)' "$tmp/berthd.log" | tail -30 >&2 || true
fi
if [ -z "${CRITEST_ARGS:-}" ] && { [ "$passed" -lt "$expected" ] || [ "$ran" != "$passed" ]; }; then
  die "expected $expected passed (78 conformance specs less ${#skips[@]} allowed skips); got $passed of $ran"
fi
[ "$critest_rc" = 0 ] || die "critest failed (exit $critest_rc)"
