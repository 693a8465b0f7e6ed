/**
 * An HPACK (RFC 7541) decoder for the CLI's small HTTP/2 client: the static and dynamic
 * tables, integers, literal and Huffman-coded strings. Decoding only: the client's requests
 * use literals, which need no state.
 */

const STATIC_NAMES =
  ":authority :method :method :path :path :scheme :scheme :status :status :status :status :status " +
  ":status :status accept-charset accept-encoding accept-language accept-ranges accept " +
  "access-control-allow-origin age allow authorization cache-control content-disposition " +
  "content-encoding content-language content-length content-location content-range content-type " +
  "cookie date etag expect expires from host if-match if-modified-since if-none-match if-range " +
  "if-unmodified-since last-modified link location max-forwards proxy-authenticate " +
  "proxy-authorization range referer refresh retry-after server set-cookie " +
  "strict-transport-security transfer-encoding user-agent vary via www-authenticate";
const STATIC_VALUES: Record<number, string> = {
  2: "GET",
  3: "POST",
  4: "/",
  5: "/index.html",
  6: "http",
  7: "https",
  8: "200",
  9: "204",
  10: "206",
  11: "304",
  12: "400",
  13: "404",
  14: "500",
  16: "gzip, deflate",
};
const STATIC: Array<[string, string]> = STATIC_NAMES.split(" ").map((n, i) => [
  n,
  STATIC_VALUES[i + 1] ?? "",
]);

/**
 * The Huffman code's lengths in bits for symbols 0..256 (RFC 7541 Appendix B), one character
 * each (length + 48). The code is canonical, so the codes follow from the lengths.
 */
const HUFFMAN_LENGTHS =
  "=GLLLLLLLHNLLNLLLLLLLLNLLLLLLLLL6::<=68;::8;8666555666666678?6<:=67777777777777777777777878=C=>6?5656566657766656765567777" +
  "7?;>=LDFDDFFFGFGGGGGHGHHFGHGGGGEFGFGGHFEDFFGGEGFFHEFGGEEFEGFGGDFFFGFFGJJDCFGFIJJJKKJHICEJKKJKHEEJJLKKKDHDEFEEGFFIIHHJGJKJJKKKKKLKKKKKJN";

/** (length << 32) + code → symbol. */
let huffman: Map<number, number> | undefined;

function huffmanTable(): Map<number, number> {
  if (huffman) return huffman;
  const lengths = [...HUFFMAN_LENGTHS].map((c) => c.charCodeAt(0) - 48);
  const order = lengths.map((_, s) => s).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  huffman = new Map();
  let code = 0;
  let prev = lengths[order[0]!]!;
  order.forEach((s, i) => {
    const len = lengths[s]!;
    if (i > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    huffman!.set(len * 2 ** 32 + code, s);
  });
  return huffman;
}

export function huffmanDecode(buf: Uint8Array): Buffer {
  const table = huffmanTable();
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of buf) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const sym = table.get(len * 2 ** 32 + code);
      if (sym === undefined) {
        if (len > 30) throw new Error("HPACK: bad Huffman code");
        continue;
      }
      if (sym === 256) throw new Error("HPACK: EOS in a Huffman string");
      out.push(sym);
      code = 0;
      len = 0;
    }
  }
  // What is left is padding: fewer than 8 bits, all ones.
  if (len > 7 || code !== 2 ** len - 1) throw new Error("HPACK: bad Huffman padding");
  return Buffer.from(out);
}

export type Header = [name: string, value: string];

/** One connection's decoding state: the dynamic table (newest first). */
export class HpackDecoder {
  private dynamic: Header[] = [];
  private size = 0;

  constructor(private maxSize = 4096) {}

  decode(block: Uint8Array): Header[] {
    const headers: Header[] = [];
    let i = 0;
    const int = (prefixBits: number): number => {
      const max = 2 ** prefixBits - 1;
      let v = (block[i++] ?? 0) & max;
      if (v < max) return v;
      let shift = 0;
      for (;;) {
        if (i >= block.length || shift > 28) throw new Error("HPACK: bad integer");
        const b = block[i++]!;
        v += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (b < 0x80) return v;
      }
    };
    const str = (): string => {
      const huff = ((block[i] ?? 0) & 0x80) !== 0;
      const len = int(7);
      if (i + len > block.length) throw new Error("HPACK: string past the block's end");
      const raw = block.subarray(i, i + len);
      i += len;
      return (huff ? huffmanDecode(raw) : Buffer.from(raw)).toString("latin1");
    };
    const entry = (index: number): Header => {
      const e = index <= STATIC.length ? STATIC[index - 1] : this.dynamic[index - STATIC.length - 1];
      if (index === 0 || !e) throw new Error(`HPACK: no table entry ${index}`);
      return e;
    };
    while (i < block.length) {
      const b = block[i]!;
      if (b & 0x80) {
        headers.push(entry(int(7)));
      } else if (b & 0x40) {
        const index = int(6);
        const name = index ? entry(index)[0] : str();
        const h: Header = [name, str()];
        headers.push(h);
        this.insert(h);
      } else if (b & 0x20) {
        this.maxSize = int(5);
        this.evict(0);
      } else {
        const index = int(4);
        const name = index ? entry(index)[0] : str();
        headers.push([name, str()]);
      }
    }
    return headers;
  }

  private insert(h: Header): void {
    const size = h[0].length + h[1].length + 32;
    this.evict(size);
    if (size <= this.maxSize) {
      this.dynamic.unshift(h);
      this.size += size;
    }
  }

  private evict(room: number): void {
    while (this.size + room > this.maxSize && this.dynamic.length > 0) {
      const h = this.dynamic.pop()!;
      this.size -= h[0].length + h[1].length + 32;
    }
  }
}
