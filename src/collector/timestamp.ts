/**
 * strftime-style time formats (what processor_parse_timestamp_native's SourceFormat takes),
 * compiled once to a regex with named captures. Supported: %Y %y %m %d %e %H %I %M %S %f %p
 * %b %h %B %a %A %z %s %T %F %D %R %%; a format is matched at the start of the value.
 */
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

const PARTS: Record<string, string> = {
  Y: "(?<Y>\\d{4})",
  y: "(?<y>\\d{2})",
  m: "(?<m>\\d{1,2})",
  d: "(?<d>\\d{1,2})",
  e: " ?(?<d>\\d{1,2})",
  H: "(?<H>\\d{1,2})",
  I: "(?<I>\\d{1,2})",
  M: "(?<M>\\d{1,2})",
  S: "(?<S>\\d{1,2})",
  f: "(?<f>\\d{1,9})",
  p: "(?<p>[AaPp][Mm])",
  b: "(?<b>[A-Za-z]{3})",
  h: "(?<b>[A-Za-z]{3})",
  B: "(?<b>[A-Za-z]{3})[A-Za-z]*",
  a: "[A-Za-z]{3}",
  A: "[A-Za-z]+",
  z: "(?<z>Z|[+-]\\d\\d:?\\d\\d)",
  s: "(?<s>\\d{1,12})",
};
const ALIASES: Record<string, string> = { T: "%H:%M:%S", F: "%Y-%m-%d", D: "%m/%d/%y", R: "%H:%M" };

export type TimeParser = (text: string) => bigint | undefined;

/** Offset in minutes east of UTC from "GMT+08:00" / "UTC-03:30" / "+0800"; undefined: local. */
export function parseTimezone(tz: string): number | undefined {
  if (!tz) return undefined;
  const m = /^(?:GMT|UTC)?([+-])(\d\d):?(\d\d)$/.exec(tz);
  if (tz === "GMT" || tz === "UTC" || tz === "Z") return 0;
  if (!m) throw new Error(`bad time zone ${JSON.stringify(tz)}: want GMT+HH:MM`);
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

export function compileTimeFormat(format: string, tzOffsetMin?: number): TimeParser {
  let expanded = format;
  for (const [k, v] of Object.entries(ALIASES)) expanded = expanded.replaceAll(`%${k}`, v);
  let src = "^";
  const seen = new Set<string>();
  for (let i = 0; i < expanded.length; i++) {
    const ch = expanded[i]!;
    if (ch !== "%") {
      src += ch.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      continue;
    }
    const spec = expanded[++i];
    if (spec === "%") {
      src += "%";
      continue;
    }
    const part = spec === undefined ? undefined : PARTS[spec];
    if (!part)
      throw new Error(`unsupported time format directive %${spec ?? ""} in ${JSON.stringify(format)}`);
    const group = /\(\?<(\w)>/.exec(part)?.[1];
    if (group && seen.has(group)) throw new Error(`time format ${JSON.stringify(format)} repeats %${spec}`);
    if (group) seen.add(group);
    src += part;
  }
  const re = new RegExp(src);
  return (text) => {
    const g = re.exec(text)?.groups;
    if (!g) return undefined;
    const frac = g["f"] ? BigInt(g["f"].padEnd(9, "0")) : 0n;
    if (g["s"]) return BigInt(g["s"]) * 1_000_000_000n + frac;
    const year = g["Y"] ? Number(g["Y"]) : g["y"] ? 2000 + Number(g["y"]) : new Date().getUTCFullYear();
    const month = g["m"] ? Number(g["m"]) - 1 : g["b"] ? MONTHS.indexOf(g["b"].toLowerCase()) : 0;
    if (month < 0 || month > 11) return undefined;
    let hour = Number(g["H"] ?? g["I"] ?? 0);
    if (g["p"]) hour = (hour % 12) + (g["p"].toLowerCase() === "pm" ? 12 : 0);
    const fields = [
      year,
      month,
      Number(g["d"] ?? 1),
      hour,
      Number(g["M"] ?? 0),
      Number(g["S"] ?? 0),
    ] as const;
    let ms: number;
    const zone = g["z"];
    if (zone !== undefined || tzOffsetMin !== undefined) {
      const off = zone !== undefined ? (zone === "Z" ? 0 : (parseTimezone(zone) ?? 0)) : (tzOffsetMin ?? 0);
      ms = Date.UTC(...fields) - off * 60_000;
    } else ms = new Date(...fields).getTime();
    if (Number.isNaN(ms)) return undefined;
    return BigInt(ms) * 1_000_000n + frac;
  };
}
