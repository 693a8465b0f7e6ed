/**
 * The runtime conmon runs for a sandbox handler (gVisor's runsc): a small shell wrapper.
 *
 * conmon learns a container's exit by waiting for the pid `create` wrote, which must be its
 * (re-parented) child. runsc writes the sandbox's pid for every container of a pod, and an app
 * container's processes live inside the sandbox, not below its conmon (containerd's runsc shim
 * asks `runsc wait` instead; CRI-O cannot run runsc for this reason, gVisor issue 10313). So for
 * `create` the wrapper runs the real create, keeps the sandbox's pid in `sandbox.pid` beside the
 * pid file, and leaves a waiter in its place: a child of conmon (its subreaper) holding the
 * container's stdio. berthd's StartContainer releases it through the `start` FIFO; it runs
 * `runsc start` (which hands its own stdio to an app container: the container's pipes, not
 * berthd's), records the status, runs `runsc wait` and exits with the container's exit code
 * (128+n for a signal; 137 when the sandbox is gone). conmon then writes the exit file and drains
 * the log as for runc. Every other command is passed to the runtime.
 *
 * Protocol: `shim --berth-runtime=PATH [global flags] SUBCOMMAND ...`.
 */
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const SHIM_RUNTIME_FLAG = "--berth-runtime=";
/** The FIFO in the container's monitor directory that releases the waiter ("start" or "quit"). */
export const START_FIFO = "start";
/** `runsc start`'s exit status and (JSON) log, written by the waiter. */
export const START_STATUS = "start.status";
export const START_LOG = "start.log";
/** The sandbox's pid as runsc reported it (the pid file then names the waiter). */
export const SANDBOX_PID_FILE = "sandbox.pid";

export const SHIM_SCRIPT = `#!/bin/sh
# Berth's wrapper around a sandbox runtime (runsc) for conmon: see src/runtime/sandbox-shim.ts.
runtime=
n=0
for a; do
  shift
  case $a in
  ${SHIM_RUNTIME_FLAG}*) runtime=\${a#${SHIM_RUNTIME_FLAG}} ;;
  *) set -- "$@" "$a" ;;
  esac
done
[ -n "$runtime" ] || { echo "berth sandbox shim: no ${SHIM_RUNTIME_FLAG}" >&2; exit 2; }
for a; do
  [ "$a" = create ] && break
  n=$((n + 1))
done
[ "$n" -lt $# ] || exec "$runtime" "$@"
bundle=.
prev=
for a; do
  [ "$prev" = --bundle ] && bundle=$a
  case $a in --bundle=*) bundle=\${a#--bundle=} ;; esac
  prev=$a
done
# A pod's root container starts the sandbox. A host-network pod's (no network namespace in its
# spec) gets the host's network (runsc --network=host), as runc's containers would; and
# runsc before 2024-08 takes any network namespace for the host's when
# /proc/sys/net/core/rmem_default exists, which Linux 6.x gives every one (gVisor issue 10704):
# its start, which hands the pod's interfaces to the sandbox, runs without /proc/sys/net.
hide=
if grep -Eq '"io.kubernetes.cri.container-type": *"sandbox"' "$bundle/config.json"; then
  hide=1
  if ! grep -Eq '"type": *"network"' "$bundle/config.json"; then
    set -- --network=host "$@"
    n=$((n + 1))
  fi
fi
"$runtime" "$@" || exit
pidfile=
prev=
for a; do
  [ "$prev" = --pid-file ] && pidfile=$a
  case $a in --pid-file=*) pidfile=\${a#--pid-file=} ;; esac
  prev=$a
  id=$a
done
[ -n "$pidfile" ] || exit 0
# Keep only the global flags (what came before "create").
i=0
for a; do
  shift
  [ "$i" -lt "$n" ] && set -- "$@" "$a"
  i=$((i + 1))
done
dir=\${pidfile%/*}
cp "$pidfile" "$dir/${SANDBOX_PID_FILE}" || exit
rm -f "$dir/${START_FIFO}"
mkfifo -m 600 "$dir/${START_FIFO}" || exit
# An asynchronous list's stdin is /dev/null unless redirected: keep the container's stdin.
exec 3<&0
(
  read -r go <"$dir/${START_FIFO}" || exit 137
  [ "$go" = start ] || exit 137
  log=--log="$dir/${START_LOG}"
  if [ -n "$hide" ]; then
    unshare -m --propagation private sh -c 'mount -t tmpfs -o size=4k berth-hide /proc/sys/net && exec "$@"' \\
      sh "$runtime" "$@" "$log" --log-format=json start "$id"
  else
    "$runtime" "$@" "$log" --log-format=json start "$id"
  fi
  st=$?
  echo "$st" >"$dir/${START_STATUS}.tmp" && mv "$dir/${START_STATUS}.tmp" "$dir/${START_STATUS}"
  [ "$st" = 0 ] || exit 128
  out=$("$runtime" "$@" wait "$id" </dev/null 2>/dev/null)
  code=\${out##*\\"exitStatus\\":}
  code=\${code%%[!0-9]*}
  exit "\${code:-137}"
) <&3 3<&- &
echo $! >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
`;

/** Writes the wrapper to `<dir>/sandbox-shim` (replaced only when it changed); returns its path. */
export async function installShim(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, "sandbox-shim");
  const have = await readFile(path, "utf8").catch(() => undefined);
  if (have !== SHIM_SCRIPT) {
    await writeFile(`${path}.tmp`, SHIM_SCRIPT, { mode: 0o755 });
    await chmod(`${path}.tmp`, 0o755);
    await rename(`${path}.tmp`, path);
  }
  return path;
}
