#!/usr/bin/env bash
# CRIU for CheckpointContainer. Debian 12's criu (3.17, installed by install-deps.sh) cannot
# start on Linux 6.13 and newer: those kernels split the vvar mapping ([vvar_vclock]), and
# CRIU before 4.0 stops at "vdso: Unexpected rt vDSO area bounds" (criu issue 2532, fixed in
# 4.0). Where `criu check` fails that way, this puts Debian 13's criu 4.1 with the C library it
# needs into /opt/berth/criu (nothing outside that directory changes: the host's apt sources
# and libc stay as they are) behind /opt/berth/criu/criu, which runs it with that libc's
# loader. Point berthd at it with `runtime.criu = "/opt/berth/criu/criu"`; the tests use it,
# and Debian 13's checkpointctl (/opt/berth/criu/checkpointctl) to read the archives.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "install-criu.sh: run as root" >&2; exit 1; fi
dest=/opt/berth/criu
if /usr/sbin/criu check >/dev/null 2>&1; then
  echo "install-criu.sh: /usr/sbin/criu works on this kernel"
  exit 0
fi
if [ -x "$dest/criu" ] && [ -x "$dest/checkpointctl" ] && "$dest/criu" check >/dev/null 2>&1; then
  echo "install-criu.sh: $dest/criu works on this kernel"
  exit 0
fi
check=$(/usr/sbin/criu check 2>&1 || true)
if [[ "$check" != *"vDSO area bounds"* ]]; then
  echo "install-criu.sh: criu check fails for another reason than the vvar split; not fetching a newer CRIU:" >&2
  grep Error <<<"$check" >&2 || true
  exit 0
fi
# The host's own Debian mirror, with the next release's suite.
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
if [ -z "$mirror" ]; then echo "install-criu.sh: no Debian mirror found in the apt sources" >&2; exit 1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb $mirror trixie main" >"$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -q
(cd "$work/debs" && apt-get "${apt_opts[@]}" download criu/trixie libcompel1/trixie libc6/trixie checkpointctl/trixie)
rm -rf "$dest.new"
mkdir -p "$dest.new"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$dest.new/root"; done
for tool in sbin/criu bin/checkpointctl; do
  cat >"$dest.new/${tool#*/}" <<WRAP
#!/bin/sh
# Debian 13's ${tool#*/} with Debian 13's C library (scripts/install-criu.sh).
lib=$dest/root/usr/lib/x86_64-linux-gnu
exec "\$lib/ld-linux-x86-64.so.2" --library-path "\$lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" $dest/root/usr/$tool "\$@"
WRAP
  chmod 755 "$dest.new/${tool#*/}"
done
rm -rf "$dest"
mv "$dest.new" "$dest"
"$dest/criu" --version
"$dest/criu" check
