// SPDY/3 header blocks: the name/value block layout and its zlib compression.
//
// Wire format (SPDY/3 and 3.1, section 2.6.10): a 32-bit count of pairs, then per pair a 32-bit
// name length, the (lowercase) name, a 32-bit value length and the value. Several values of one
// name are joined with NUL. The whole block is zlib-compressed with the SPDY/3 dictionary; every
// header block of one direction of a connection continues the SAME zlib stream and ends with a
// Z_SYNC_FLUSH (moby/spdystream: one zlib.Writer per connection, Flush() after every block; one
// zlib reader per connection fed through a LimitedReader per frame).
//
// Node's zlib has no documented synchronous streaming API (`_processChunk` closes the handle after
// one call), so both contexts are emulated with the one-shot *Raw*Sync functions:
//  - a sync-flushed block ends byte-aligned at a deflate block boundary, so decoding can restart
//    there; the only state that crosses the boundary is the 32 KiB LZ77 window, which we pass as
//    the raw inflater's preset dictionary (initially the SPDY dictionary, then the last 32 KiB of
//    dictionary + everything decoded so far);
//  - symmetrically, each outgoing block is raw-deflated with the same sliding window as its
//    dictionary and Z_SYNC_FLUSH as the final flush, which is a valid continuation of one zlib
//    stream for the peer; the first block gets the zlib header with FDICT and the dictionary's
//    Adler-32 (0xe3c6a7c2). The Adler-32 trailer never appears: the stream never ends.

import { constants, deflateRawSync, inflateRawSync } from "node:zlib";

/** The SPDY/3 zlib dictionary (draft 3 / 3.1, section 2.6.10.1), 1423 bytes, Adler-32 0xe3c6a7c2. */
export const SPDY3_DICTIONARY: Buffer = Buffer.from(
  "000000076f7074696f6e73000000046865616400000004706f7374000000037075740000000664656c65746500000005" +
    "7472616365000000066163636570740000000e6163636570742d636861727365740000000f6163636570742d656e636f" +
    "64696e670000000f6163636570742d6c616e67756167650000000d6163636570742d72616e6765730000000361676500" +
    "000005616c6c6f770000000d617574686f72697a6174696f6e0000000d63616368652d636f6e74726f6c0000000a636f" +
    "6e6e656374696f6e0000000c636f6e74656e742d6261736500000010636f6e74656e742d656e636f64696e6700000010" +
    "636f6e74656e742d6c616e67756167650000000e636f6e74656e742d6c656e67746800000010636f6e74656e742d6c6f" +
    "636174696f6e0000000b636f6e74656e742d6d64350000000d636f6e74656e742d72616e67650000000c636f6e74656e" +
    "742d74797065000000046461746500000004657461670000000665787065637400000007657870697265730000000466" +
    "726f6d00000004686f73740000000869662d6d617463680000001169662d6d6f6469666965642d73696e63650000000d" +
    "69662d6e6f6e652d6d617463680000000869662d72616e67650000001369662d756e6d6f6469666965642d73696e6365" +
    "0000000d6c6173742d6d6f646966696564000000086c6f636174696f6e0000000c6d61782d666f727761726473000000" +
    "06707261676d610000001270726f78792d61757468656e7469636174650000001370726f78792d617574686f72697a61" +
    "74696f6e0000000572616e676500000007726566657265720000000b72657472792d6166746572000000067365727665" +
    "7200000002746500000007747261696c6572000000117472616e736665722d656e636f64696e67000000077570677261" +
    "64650000000a757365722d6167656e74000000047661727900000003766961000000077761726e696e67000000107777" +
    "772d61757468656e746963617465000000066d6574686f64000000036765740000000673746174757300000006323030" +
    "204f4b0000000776657273696f6e00000008485454502f312e310000000375726c000000067075626c69630000000a73" +
    "65742d636f6f6b69650000000a6b6565702d616c697665000000066f726967696e313030313031323031323032323035" +
    "323036333030333032333033333034333035333036333037343032343035343036343037343038343039343130343131" +
    "343132343133343134343135343136343137353032353034353035323033204e6f6e2d417574686f7269746174697665" +
    "20496e666f726d6174696f6e323034204e6f20436f6e74656e74333031204d6f766564205065726d616e656e746c7934" +
    "303020426164205265717565737434303120556e617574686f72697a656434303320466f7262696464656e343034204e" +
    "6f7420466f756e6435303020496e7465726e616c20536572766572204572726f72353031204e6f7420496d706c656d65" +
    "6e746564353033205365727669636520556e617661696c61626c654a616e20466562204d617220417072204d6179204a" +
    "756e204a756c204175672053657074204f6374204e6f76204465632030303a30303a3030204d6f6e2c205475652c2057" +
    "65642c205468752c204672692c205361742c2053756e2c20474d546368756e6b65642c746578742f68746d6c2c696d61" +
    "67652f706e672c696d6167652f6a70672c696d6167652f6769662c6170706c69636174696f6e2f786d6c2c6170706c69" +
    "636174696f6e2f7868746d6c2b786d6c2c746578742f706c61696e2c746578742f6a6176617363726970742c7075626c" +
    "6963707269766174656d61782d6167653d677a69702c6465666c6174652c73646368636861727365743d7574662d3863" +
    "6861727365743d69736f2d383835392d312c7574662d2c2a2c656e713d302e",
  "hex",
);

/** Adler-32 of SPDY3_DICTIONARY: the DICTID of every SPDY/3 header zlib stream. */
export const SPDY3_DICTIONARY_ID = 0xe3c6a7c2;

const WINDOW = 32 * 1024;

/** Decoded headers: lowercase names; several values of one name stay joined with NUL (see headerValues). */
export type SpdyHeaders = Record<string, string>;
/** Headers to send: names are lowercased; arrays are joined with NUL. */
export type OutgoingHeaders = Record<string, string | number | readonly string[]>;

export class HeaderBlockError extends Error {
  override name = "HeaderBlockError";
}

/** The values of one header (split on NUL); [] when absent. */
export function headerValues(headers: SpdyHeaders, name: string): string[] {
  const v = headers[name.toLowerCase()];
  return v === undefined ? [] : v.split("\0");
}

export function adler32(buf: Uint8Array): number {
  let a = 1;
  let b = 0;
  const n = buf.length;
  let i = 0;
  while (i < n) {
    const end = Math.min(n, i + 3800); // keeps b below 2^53 before the modulo
    for (; i < end; i++) {
      a += buf[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Serialises an uncompressed name/value block. */
export function encodeHeaderBlock(headers: OutgoingHeaders): Buffer {
  const pairs: Array<[Buffer, Buffer]> = [];
  const seen = new Set<string>();
  let size = 4;
  for (const [rawName, rawValue] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (name.length === 0) throw new HeaderBlockError("empty header name");
    if (seen.has(name)) throw new HeaderBlockError(`duplicate header name ${name}`);
    seen.add(name);
    const value = Array.isArray(rawValue) ? rawValue.join("\0") : String(rawValue);
    const n = Buffer.from(name, "utf8");
    const v = Buffer.from(value, "utf8");
    pairs.push([n, v]);
    size += 8 + n.length + v.length;
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(pairs.length, 0);
  let off = 4;
  for (const [n, v] of pairs) {
    out.writeUInt32BE(n.length, off);
    n.copy(out, off + 4);
    off += 4 + n.length;
    out.writeUInt32BE(v.length, off);
    v.copy(out, off + 4);
    off += 4 + v.length;
  }
  return out;
}

/**
 * Parses an uncompressed name/value block. Names are lowercased (spdystream rejects uppercase
 * names; we are lenient); an empty or duplicate name, a short block or trailing bytes are errors.
 */
export function decodeHeaderBlock(buf: Buffer): SpdyHeaders {
  const headers: SpdyHeaders = Object.create(null) as SpdyHeaders;
  if (buf.length < 4) throw new HeaderBlockError("truncated header block");
  const count = buf.readUInt32BE(0);
  let off = 4;
  const take = (): Buffer => {
    if (off + 4 > buf.length) throw new HeaderBlockError("truncated header block");
    const len = buf.readUInt32BE(off);
    off += 4;
    if (len > buf.length - off) throw new HeaderBlockError("truncated header block");
    const s = buf.subarray(off, off + len);
    off += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = take().toString("utf8").toLowerCase();
    const value = take().toString("utf8");
    if (name.length === 0) throw new HeaderBlockError("empty header name");
    if (Object.hasOwn(headers, name)) throw new HeaderBlockError(`duplicate header name ${name}`);
    headers[name] = value;
  }
  if (off !== buf.length) throw new HeaderBlockError("trailing bytes after header block");
  return headers;
}

function slide(window: Buffer, data: Buffer): Buffer {
  if (data.length >= WINDOW) return Buffer.from(data.subarray(data.length - WINDOW));
  const keep = Math.min(window.length, WINDOW - data.length);
  return Buffer.concat([window.subarray(window.length - keep), data]);
}

/** One direction's compression context (use one per connection for everything we send). */
export class HeaderCompressor {
  private window: Buffer = SPDY3_DICTIONARY;
  private started = false;

  constructor(private readonly level = constants.Z_BEST_COMPRESSION) {}

  /** Compresses an already serialised name/value block; the result ends with 00 00 ff ff. */
  compressBlock(block: Buffer): Buffer {
    const raw = deflateRawSync(block, {
      level: this.level,
      dictionary: this.window,
      finishFlush: constants.Z_SYNC_FLUSH,
    });
    this.window = slide(this.window, block);
    if (this.started) return raw;
    this.started = true;
    const head = Buffer.allocUnsafe(6);
    head[0] = 0x78; // deflate, 32 KiB window
    const flevel = this.level >= 7 ? 3 : this.level >= 6 || this.level < 0 ? 2 : this.level >= 2 ? 1 : 0;
    let flg = (flevel << 6) | 0x20; // FDICT
    flg += 31 - ((0x78 * 256 + flg) % 31);
    head[1] = flg;
    head.writeUInt32BE(SPDY3_DICTIONARY_ID, 2);
    return Buffer.concat([head, raw]);
  }

  compress(headers: OutgoingHeaders): Buffer {
    return this.compressBlock(encodeHeaderBlock(headers));
  }
}

export interface HeaderDecompressorOptions {
  /** Largest decompressed header block accepted (zlib-bomb guard). Default 1 MiB. */
  maxHeaderBlockSize?: number;
}

/** The peer's compression context (one per connection for everything we receive). */
export class HeaderDecompressor {
  private window: Buffer = SPDY3_DICTIONARY;
  private started = false;
  private failed = false;
  private readonly max: number;

  constructor(opts: HeaderDecompressorOptions = {}) {
    this.max = opts.maxHeaderBlockSize ?? 1024 * 1024;
  }

  /** Inflates the compressed bytes of one header block (continuing the connection's zlib stream). */
  decompressBlock(compressed: Buffer): Buffer {
    if (this.failed) throw new HeaderBlockError("header decompression context is broken");
    this.failed = true; // cleared on success: any failure poisons the shared context
    let body = compressed;
    if (!this.started) {
      if (body.length < 2) throw new HeaderBlockError("truncated zlib header");
      const cmf = body[0]!;
      const flg = body[1]!;
      if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 !== 0) {
        throw new HeaderBlockError("invalid zlib header in header block");
      }
      if (flg & 0x20) {
        if (body.length < 6) throw new HeaderBlockError("truncated zlib header");
        const id = body.readUInt32BE(2);
        if (id !== SPDY3_DICTIONARY_ID) {
          throw new HeaderBlockError(`header block uses unknown zlib dictionary ${id.toString(16)}`);
        }
        body = body.subarray(6);
      } else {
        body = body.subarray(2);
      }
      this.started = true;
    }
    if (body.length === 0) throw new HeaderBlockError("empty compressed header block");
    let out: Buffer;
    try {
      out = inflateRawSync(body, {
        dictionary: this.window,
        finishFlush: constants.Z_SYNC_FLUSH,
        maxOutputLength: this.max,
      });
    } catch (err) {
      throw new HeaderBlockError(`header block decompression failed: ${(err as Error).message}`);
    }
    this.window = slide(this.window, out);
    this.failed = false;
    return out;
  }

  decompress(compressed: Buffer): SpdyHeaders {
    const block = this.decompressBlock(compressed);
    try {
      return decodeHeaderBlock(block);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }
}
