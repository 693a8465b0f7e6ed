/**
 * Bindings to Berth's small N-API addon (native/berth_native.c) for the syscalls Node lacks.
 * Calls that touch the filesystem run on libuv's thread pool and return promises, so the
 * event loop never blocks on them. Errors are Node-style: an Error with `code` (e.g. "EPERM"),
 * `errno` and `syscall`.
 */
import { createRequire } from "node:module";

export interface NativeAddon {
  /** mknod(2); `mode` carries the file type bits (S_IFCHR, S_IFBLK, S_IFIFO) and permissions. */
  mknod(path: string, mode: number, major: number, minor: number): Promise<void>;
  /** lsetxattr(2): never follows a final symlink. */
  lsetxattr(path: string, name: string, value: Buffer): Promise<void>;
  /** lgetxattr(2); resolves null when the attribute is absent (ENODATA). */
  lgetxattr(path: string, name: string): Promise<Buffer | null>;
  /** llistxattr(2). */
  llistxattr(path: string): Promise<string[]>;
  /** mount(2). */
  mount(source: string, target: string, fstype: string, flags: number, data: string): Promise<void>;
  /** umount2(2). */
  umount2(target: string, flags: number): Promise<void>;
  /**
   * Creates a new regular file with O_EXCL|O_NOFOLLOW (EEXIST if anything is there), writes
   * `data`, then fchown, fchmod (`mode` may carry setuid/setgid/sticky) and futimens, in one
   * thread-pool job. Times are milliseconds since the epoch.
   */
  createFile(
    path: string,
    data: Buffer,
    mode: number,
    uid: number,
    gid: number,
    atimeMs: number,
    mtimeMs: number,
  ): Promise<void>;
  /** flock(2) with LOCK_EX|LOCK_NB on an open fd; false when another process holds the lock. */
  tryLockExclusive(fd: number): boolean;
  /** A new pty pair (raw mode, O_CLOEXEC, O_NOCTTY) of the given size. Synchronous. */
  openPty(rows: number, cols: number): { master: number; slave: number };
  /** TIOCSWINSZ on either side of a pty. Synchronous. */
  resizePty(fd: number, rows: number, cols: number): void;
  /** FIONREAD: bytes written to a pipe or FIFO and not yet read (on either end). Synchronous. */
  pendingBytes(fd: number): number;
  /**
   * Hands `fd` (a pty master, or a SOCK_SEQPACKET socket when `packets`) to a relay thread and
   * returns a stream socket fd for `new net.Socket({ fd })`. Packets arrive on it as a 4-byte
   * big-endian length + the packet; what is written goes out as packets of at most 8 KiB, and
   * end() becomes shutdown(SHUT_WR). The thread closes `fd` once the socket is closed.
   */
  startRelay(fd: number, packets: boolean): number;
  /** Connects a SOCK_SEQPACKET socket to `dir`/`name` (any length of `dir`). */
  connectSeqpacket(dir: string, name: string): Promise<number>;
  /**
   * vfork + execvpe (no fork of the daemon): the child's fd i is `stdio[i]`, an fd of ours or a
   * SLOT_* code; `fds[i]` is our end of slot i's pipe or socket pair (else -1), close-on-exec.
   * A waiter thread reaps the child and `onExit` gets its wait status on the JS thread; the
   * event loop stays alive while a child runs. Throws (code ENOENT, EACCES…) when it cannot start.
   */
  spawn(
    file: string,
    argv: readonly string[],
    env: readonly string[],
    cwd: string | null,
    stdio: readonly number[],
    newSession: boolean,
    onExit: (status: number) => void,
  ): { pid: number; fds: number[] };
  /** Signals a child of spawn() that has not been reaped yet; false when it has. */
  killChild(pid: number, signal: number): boolean;
  /**
   * V8's memory-reducing full collection (LowMemoryNotification), then malloc_trim(0): freed heap
   * pages back to the kernel; true when malloc_trim gave some back. Synchronous (tens of ms).
   */
  releaseMemory(): boolean;
  /**
   * An ISA-L gzip inflate state (native/gunzip.c), hashing its input and output (SHA-256) when
   * `digests`; freed when the handle is collected.
   */
  gunzipCreate(digests: boolean): GunzipHandle;
  /**
   * On the thread pool: inflates `inputs` (at most 64 Buffers, one after another) into `output`
   * from `outOffset`, stopping early when it is full; then `callback(null)` with `info` holding
   * the input bytes consumed and the output bytes produced, or `callback(err)` (code
   * Z_DATA_ERROR) for data that is not gzip. Touch none of the arguments, and start no other
   * run on the handle, until the callback.
   */
  gunzipRun(
    handle: GunzipHandle,
    inputs: readonly Buffer[],
    output: Buffer,
    outOffset: number,
    info: Float64Array,
    callback: (err: Error | null) => void,
  ): void;
  /** Whether the stream so far ends cleanly: at least one member, the last one whole. */
  gunzipEnded(handle: GunzipHandle): boolean;
  /** The SHA-256 (hex) of the input and of the output so far; finishes both hashes. */
  gunzipDigests(handle: GunzipHandle): [input: string, output: string];
  /**
   * berth-collector's hot path (native/log_ndjson.c): a chunk of a CRI (`format` 0) or raw (1)
   * log -> its NDJSON records as the JS assembler and serialiser write them, `tagsSuffix`
   * (ndjson.ts's tagsSuffix) closing each; `skip` bits 1/2 drop stdout/stderr records. `info`
   * gets the consumed bytes (to the last clean point), records, their content's UTF-16
   * length and pending (0/1). Null: the chunk holds what only the JS path reads exactly.
   * Synchronous.
   */
  logNdjson(
    chunk: Buffer,
    format: 0 | 1,
    force: boolean,
    maxRecordBytes: number,
    tagsSuffix: Buffer,
    skip: number,
    nowMs: number,
    info: Float64Array,
  ): Buffer | null;
}

/** An opaque native gunzip state. */
export type GunzipHandle = { readonly __brand: "GunzipHandle" };

/** spawn() stdio slots besides an fd of ours. */
export const SLOT_NULL = -1;
/** A pipe the child reads. */
export const SLOT_PIPE_IN = -2;
/** A pipe the child writes. */
export const SLOT_PIPE_OUT = -3;
/** A unix stream socket pair. */
export const SLOT_PAIR = -4;

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const MNT_DETACH = 2;
export const MS_RDONLY = 1;
export const MS_BIND = 4096;

const require = createRequire(import.meta.url);
let loaded: NativeAddon | undefined;

/** The addon, loaded on first use (built by `npm ci` through node-gyp into native/build). */
export function native(): NativeAddon {
  loaded ??= require("../../native/build/Release/berth_native.node") as NativeAddon;
  return loaded;
}
