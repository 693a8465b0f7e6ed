/**
 * Reading layer tar headers with tar-stream, plus what tar-stream leaves out:
 *
 * - PAX values are decoded by tar-stream as UTF-8 strings, which corrupts binary xattr values
 *   (`SCHILY.xattr.security.capability` is a binary struct). {@link createLayerExtract} keeps the
 *   raw bytes of every PAX record next to the decoded ones, so xattrs are applied byte-exact.
 * - PAX `uid`, `gid`, `mtime` and `atime` override the ustar fields (Go's archive/tar writes them
 *   for ids and times that do not fit); tar-stream only honours `path`, `linkpath` and `size`.
 *
 * The raw-bytes hook wraps a private method of tar-stream's Extract (checked at creation; the
 * unit tests pin its behaviour). Without it, {@link entryMeta} still works for ASCII-safe values
 * and rejects values that the UTF-8 decoding mangled, so a tar-stream change cannot silently
 * corrupt file capabilities.
 */
import tar, { type Extract, type Header } from "tar-stream";
import { dataLoss, invalidArgument } from "../../common/errors.js";

/**
 * A header as tar-stream v3 emits it. Fields are typed loosely on purpose: they come from hostile
 * bytes (`type` is null for unknown typeflags, numbers may be NaN), and `pax` holds the records.
 */
export interface LayerHeader extends Partial<Omit<Header, "pax" | "type">> {
  name: string;
  type?: Header["type"] | null;
  pax?: Record<string, string> | null;
}

/** Ownership, permissions, times and xattrs of one entry, PAX overrides applied. */
export interface EntryMeta {
  uid: number;
  gid: number;
  /** Permission bits including setuid, setgid and sticky (0o7777). */
  mode: number;
  /** Seconds since the epoch (fractional). */
  atime: number;
  mtime: number;
  /** From `SCHILY.xattr.<name>` records, values byte-exact. */
  xattrs: Map<string, Buffer>;
}

const RAW = Symbol("berth.rawPax");
const XATTR_PREFIX = "SCHILY.xattr.";
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to chown(2)

type RawPax = Map<string, Buffer>;
type PaxObject = Record<string, string> & { [RAW]?: RawPax };

interface ExtractInternals {
  _header: { type?: string; size?: number | null } | null;
  _pax: PaxObject | null;
  _paxGlobal: PaxObject | null;
  _longHeader: boolean;
  _decodeLongHeader(buf: Buffer): void;
  _applyLongHeaders(): void;
  _consumeHeader(): boolean;
  _continueWrite(err: Error | null): void;
}

/** A tar-stream extractor that also records raw PAX record bytes. */
export function createLayerExtract(): Extract {
  // allowUnknownFormat: accept pre-POSIX (v7) headers, as Go's archive/tar does.
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  const internals = extract as unknown as ExtractInternals;
  guardSize(internals);
  const decodeLongHeader = internals._decodeLongHeader;
  if (typeof decodeLongHeader !== "function") return extract; // entryMeta falls back (see above)
  internals._decodeLongHeader = function (this: ExtractInternals, buf: Buffer): void {
    decodeLongHeader.call(this, buf);
    const type = this._header?.type;
    if (type === "pax-global-header" && this._paxGlobal) {
      setRaw(this._paxGlobal, parseRawPax(buf));
    } else if (type === "pax-header" && this._pax) {
      const global = this._paxGlobal?.[RAW];
      const local = parseRawPax(buf);
      setRaw(this._pax, global ? new Map([...global, ...local]) : local);
    }
  };
  return extract;
}

/**
 * tar-stream decodes a base-256 size field whose first byte is neither 0x80 nor 0xff as null,
 * which passes its own `size >= 0` check and then stalls the extractor for good (no error, no
 * finish): a layer could hang a pull. A size that is not a safe non-negative integer becomes NaN
 * before that check, so tar-stream fails the archive ("Invalid header") before emitting the
 * entry; PAX and GNU long headers, checked apart by tar-stream, fail the same way.
 */
function guardSize(internals: ExtractInternals): void {
  const valid = (size: unknown) => typeof size === "number" && Number.isSafeInteger(size) && size >= 0;
  const applyLongHeaders = internals._applyLongHeaders;
  const consumeHeader = internals._consumeHeader;
  if (typeof applyLongHeaders !== "function" || typeof consumeHeader !== "function") return;
  internals._applyLongHeaders = function (this: ExtractInternals): void {
    applyLongHeaders.call(this);
    if (this._header && !valid(this._header.size)) this._header.size = Number.NaN;
  };
  internals._consumeHeader = function (this: ExtractInternals): boolean {
    if (!consumeHeader.call(this)) return false;
    if (this._longHeader && !valid(this._header?.size)) {
      this._continueWrite(new Error("Invalid header"));
      return false;
    }
    return true;
  };
}

function setRaw(pax: PaxObject, raw: RawPax): void {
  Object.defineProperty(pax, RAW, { value: raw, enumerable: false, configurable: true });
}

/**
 * PAX records (`<len> <key>=<value>\n`) with values as bytes. Mirrors tar-stream's decodePax
 * step for step (same stopping rules), so both parsers always see the same set of keys.
 */
export function parseRawPax(buf: Buffer): RawPax {
  const result: RawPax = new Map();
  let rest = buf;
  while (rest.length > 0) {
    let i = 0;
    while (i < rest.length && rest[i] !== 0x20) i++;
    const len = Number.parseInt(rest.subarray(0, i).toString(), 10);
    if (!len) return result;
    const record = rest.subarray(i + 1, len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) return result;
    result.set(record.subarray(0, eq).toString(), Buffer.from(record.subarray(eq + 1)));
    rest = rest.subarray(len);
  }
  return result;
}

/** Metadata of an entry; InvalidArgument when a numeric field is garbage. `label` names the entry. */
export function entryMeta(header: LayerHeader, label: string): EntryMeta {
  const pax = header.pax ?? undefined;
  const uid = paxId(pax, "uid", label) ?? header.uid ?? 0;
  const gid = paxId(pax, "gid", label) ?? header.gid ?? 0;
  checkId(uid, "uid", label);
  checkId(gid, "gid", label);
  const mode = header.mode ?? 0;
  if (!Number.isInteger(mode) || mode < 0) throw invalidArgument(`layer entry ${label}: invalid mode`);
  const headerMtime = header.mtime?.getTime();
  const mtime = paxTime(pax, "mtime", label) ?? (Number.isFinite(headerMtime) ? headerMtime! / 1000 : 0);
  const atime = Math.max(paxTime(pax, "atime", label) ?? mtime, mtime);
  return { uid, gid, mode: mode & 0o7777, atime, mtime, xattrs: paxXattrs(pax, label) };
}

function paxId(pax: PaxObject | undefined, key: string, label: string): number | undefined {
  const value = pax?.[key];
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,10}$/.test(value)) throw invalidArgument(`layer entry ${label}: invalid PAX ${key}`);
  return Number(value);
}

function checkId(id: number, what: string, label: string): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) {
    throw invalidArgument(`layer entry ${label}: invalid ${what} ${id}`);
  }
}

function paxTime(pax: PaxObject | undefined, key: string, label: string): number | undefined {
  const value = pax?.[key];
  if (value === undefined) return undefined;
  if (!/^-?[0-9]{1,19}(\.[0-9]*)?$/.test(value))
    throw invalidArgument(`layer entry ${label}: invalid PAX ${key}`);
  return Number(value);
}

function paxXattrs(pax: PaxObject | undefined, label: string): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  if (!pax) return xattrs;
  const raw = pax[RAW];
  for (const [key, value] of Object.entries(pax)) {
    if (!key.startsWith(XATTR_PREFIX)) continue;
    const name = key.slice(XATTR_PREFIX.length);
    const bytes = raw?.get(key);
    if (bytes) {
      xattrs.set(name, bytes);
    } else if (value.includes("\uFFFD")) {
      throw dataLoss(`layer entry ${label}: xattr ${name} value is not byte-exact (tar reader lost it)`);
    } else {
      xattrs.set(name, Buffer.from(value, "utf8"));
    }
  }
  return xattrs;
}
