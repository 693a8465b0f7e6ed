/**
 * A subset of Go's text/template for `-o go-template`, as crictl users write them:
 * `{{.a.b}}`, `{{range P}}…{{else}}…{{end}}` (with `$i, $e :=`), `{{if P}}…{{else if P}}…
 * {{else}}…{{end}}`, `{{with P}}`, variables (`$`, `$x := P`), pipelines (`P | f`), trim markers
 * `{{-`/`-}}`, comments, and the functions json, printf, print, println, index, len, eq, ne,
 * lt, le, gt, ge, and, or, not, upper, lower, title.
 * Unlike Go, maps and lists print as JSON (Go prints `map[k:v]`); no template definitions.
 */
import { UsageError } from "./errors.js";

type Expr =
  | { k: "field"; base: Expr | undefined; path: string[] } // base undefined: the dot
  | { k: "var"; name: string; path: string[] }
  | { k: "lit"; v: unknown }
  | { k: "call"; fn: string; args: Expr[] }
  | { k: "pipe"; cmds: Expr[] };

type Node = { t: "text"; s: string } | { t: "out"; e: Expr } | { t: "set"; name: string; e: Expr } | Block;

/** if, with, range; `vars`: range's `$i, $e :=`. */
interface Block {
  t: "if" | "with" | "range";
  e: Expr;
  vars: string[];
  body: Node[];
  alt: Node[];
}

const fail = (m: string): never => {
  throw new UsageError(`go-template: ${m}`);
};

/** Splits an action into tokens: strings, numbers, words, variables, fields and punctuation. */
function tokens(src: string): string[] {
  return [...src.matchAll(/"(?:[^"\\]|\\.)*"|`[^`]*`|:=|\)(?:\.[\w.]+)?|[|(,]|[^\s|(),]+/g)].map((m) => m[0]);
}

function parseExpr(toks: string[]): Expr {
  let i = 0;
  const operand = (): Expr => {
    const t = toks[i++] ?? fail("missing value");
    let e: Expr;
    if (t === "(") {
      e = pipeline(")");
      // `(pipeline).field`: the field is read from the pipeline's value
      const close = toks[i++] ?? "";
      if (!close.startsWith(")")) fail("missing )");
      if (close.length > 1) e = { k: "field", base: e, path: close.slice(2).split(".") };
    } else if (t.startsWith('"')) e = { k: "lit", v: JSON.parse(t) };
    else if (t.startsWith("`")) e = { k: "lit", v: t.slice(1, -1) };
    else if (/^-?\d+(\.\d+)?$/.test(t)) e = { k: "lit", v: Number(t) };
    else if (t === "true" || t === "false") e = { k: "lit", v: t === "true" };
    else if (t === "nil") e = { k: "lit", v: null };
    else if (t.startsWith("$")) {
      const [name, ...path] = t.split(".");
      e = { k: "var", name: name!, path };
    } else if (t.startsWith("."))
      e = { k: "field", base: undefined, path: t === "." ? [] : t.slice(1).split(".") };
    else if (/^[A-Za-z_]\w*$/.test(t)) return { k: "call", fn: t, args: [] };
    else return fail(`unexpected "${t}"`);
    return e;
  };
  const command = (end: string | undefined): Expr => {
    const first = operand();
    if (first.k !== "call") return first;
    while (i < toks.length && toks[i] !== "|" && !(end && toks[i]!.startsWith(end)))
      first.args.push(operand());
    return first;
  };
  const pipeline = (end?: string): Expr => {
    const cmds = [command(end)];
    while (toks[i] === "|") {
      i++;
      const c = command(end);
      if (c.k !== "call") fail("a pipeline's later stages must be functions");
      cmds.push(c);
    }
    return cmds.length === 1 ? cmds[0]! : { k: "pipe", cmds };
  };
  const e = pipeline();
  if (i < toks.length) fail(`unexpected "${toks[i]}"`);
  return e;
}

export function parseTemplate(tpl: string): Node[] {
  const root: Node[] = [];
  // open blocks: the node, and whether we are in its else part
  const stack: Array<{ list: Node[]; node?: Block }> = [{ list: root }];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  // `\n` and `\t` typed in a shell argument, as crictl users write them
  const text = (s: string) => {
    if (s)
      stack[stack.length - 1]!.list.push({ t: "text", s: s.replace(/\\n/g, "\n").replace(/\\t/g, "\t") });
  };
  for (let m = re.exec(tpl); m; m = re.exec(tpl)) {
    let before = tpl.slice(last, m.index);
    if (trimNext) before = before.replace(/^\s+/, "");
    if (m[1]) before = before.replace(/\s+$/, "");
    text(before);
    last = m.index + m[0].length;
    trimNext = !!m[3];
    const action = (m[2] ?? "").trim();
    const top = stack[stack.length - 1]!;
    const [word = ""] = action.split(/\s+/, 1);
    const rest = action.slice(word.length).trim();
    if (action.startsWith("/*")) continue;
    if (word === "if" || word === "with" || word === "range") {
      let vars: string[] = [];
      let src = rest;
      const decl = /^(\$\w*)(?:\s*,\s*(\$\w*))?\s*:=\s*([\s\S]*)$/.exec(rest);
      if (word === "range" && decl) {
        vars = decl[2] ? [decl[1]!, decl[2]] : [decl[1]!];
        src = decl[3]!;
      }
      const node: Block = { t: word, e: parseExpr(tokens(src)), vars, body: [], alt: [] };
      top.list.push(node);
      stack.push({ list: node.body, node });
    } else if (word === "else") {
      if (!top.node) fail("{{else}} outside if/range/with");
      const elif = /^(if|with)\s+([\s\S]+)$/.exec(rest);
      if (elif) {
        // {{else if P}}: an if inside the else part, closed by the same {{end}}
        const node: Block = {
          t: elif[1] as "if" | "with",
          e: parseExpr(tokens(elif[2]!)),
          vars: [],
          body: [],
          alt: [],
        };
        top.node!.alt.push(node);
        stack[stack.length - 1] = { list: node.body, node };
      } else top.list = top.node!.alt;
    } else if (word === "end") {
      if (stack.length === 1) fail("{{end}} without if/range/with");
      stack.pop();
    } else {
      const set = /^(\$\w+)\s*:?=\s*([\s\S]+)$/.exec(action);
      if (set) top.list.push({ t: "set", name: set[1]!, e: parseExpr(tokens(set[2]!)) });
      else top.list.push({ t: "out", e: parseExpr(tokens(action)) });
    }
  }
  if (stack.length !== 1) fail("{{if}}/{{range}}/{{with}} without {{end}}");
  let tail = tpl.slice(last);
  if (trimNext) tail = tail.replace(/^\s+/, "");
  text(tail);
  return root;
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === "object") return Object.keys(v).length > 0;
  return !!v;
}

function field(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

export function show(v: unknown): string {
  if (v === undefined || v === null) return "<no value>";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Go's fmt verbs that templates use: %s %v %d %q %x %t %f and width/precision/-. */
function printf(format: string, args: unknown[]): string {
  let n = 0;
  return format.replace(
    /%([-0]?)(\d*)(?:\.(\d+))?([svdqxtf%])/g,
    (_m, flag: string, width: string, prec: string, verb: string) => {
      if (verb === "%") return "%";
      const a = args[n++];
      let s: string;
      if (verb === "d") s = String(Math.trunc(Number(a)));
      else if (verb === "q") s = JSON.stringify(show(a));
      else if (verb === "x")
        s = typeof a === "number" ? a.toString(16) : Buffer.from(show(a)).toString("hex");
      else if (verb === "f") s = Number(a).toFixed(prec ? Number(prec) : 6);
      else s = show(a);
      if (prec && verb === "s") s = s.slice(0, Number(prec));
      const w = Number(width || 0);
      if (s.length < w) s = flag === "-" ? s.padEnd(w) : s.padStart(w, flag === "0" ? "0" : " ");
      return s;
    },
  );
}

const cmp =
  (f: (a: never, b: never) => boolean) =>
  (a: unknown, ...bs: unknown[]) =>
    bs.length === 0 ? fail("comparison needs two values") : bs.some((b) => f(a as never, b as never));

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(v),
  printf: (f, ...a) => printf(String(f), a),
  print: (...a) => a.map(show).join(" "),
  println: (...a) => `${a.map(show).join(" ")}\n`,
  len: (v) =>
    Array.isArray(v) || typeof v === "string"
      ? v.length
      : v && typeof v === "object"
        ? Object.keys(v).length
        : fail("len of a non-collection"),
  index: (v, ...keys) => keys.reduce((cur, k) => field(cur, [String(k)]), v),
  eq: cmp((a, b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => (a as number) < (b as number),
  le: (a, b) => (a as number) <= (b as number),
  gt: (a, b) => (a as number) > (b as number),
  ge: (a, b) => (a as number) >= (b as number),
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find(truthy) ?? a[a.length - 1],
  not: (a) => !truthy(a),
  upper: (s) => show(s).toUpperCase(),
  lower: (s) => show(s).toLowerCase(),
  title: (s) => show(s).replace(/\b\w/g, (c) => c.toUpperCase()),
};

type Scope = Map<string, unknown>;

function evaluate(e: Expr, dot: unknown, vars: Scope, piped?: unknown[]): unknown {
  switch (e.k) {
    case "lit":
      return e.v;
    case "field":
      return field(e.base ? evaluate(e.base, dot, vars) : dot, e.path);
    case "var":
      if (!vars.has(e.name)) fail(`undefined variable ${e.name}`);
      return field(vars.get(e.name), e.path);
    case "call": {
      const f = FUNCS[e.fn] ?? fail(`function "${e.fn}" not defined`);
      return f(...e.args.map((a) => evaluate(a, dot, vars)), ...(piped ?? []));
    }
    case "pipe": {
      let v = evaluate(e.cmds[0]!, dot, vars);
      for (const c of e.cmds.slice(1)) v = evaluate(c, dot, vars, [v]);
      return v;
    }
  }
}

function run(nodes: Node[], dot: unknown, vars: Scope): string {
  let out = "";
  for (const n of nodes) {
    if (n.t === "text") out += n.s;
    else if (n.t === "out") out += show(evaluate(n.e, dot, vars));
    else if (n.t === "set") vars.set(n.name, evaluate(n.e, dot, vars));
    else if (n.t === "if") out += run(truthy(evaluate(n.e, dot, vars)) ? n.body : n.alt, dot, new Map(vars));
    else if (n.t === "with") {
      const v = evaluate(n.e, dot, vars);
      out += truthy(v) ? run(n.body, v, new Map(vars)) : run(n.alt, dot, new Map(vars));
    } else {
      const v = evaluate(n.e, dot, vars);
      const entries: Array<[unknown, unknown]> = Array.isArray(v)
        ? v.map((x, i) => [i, x])
        : v && typeof v === "object"
          ? Object.keys(v)
              .sort()
              .map((k) => [k, (v as Record<string, unknown>)[k]])
          : [];
      if (entries.length === 0) out += run(n.alt, dot, new Map(vars));
      for (const [k, x] of entries) {
        const scope = new Map(vars);
        if (n.vars.length === 1) scope.set(n.vars[0]!, x);
        if (n.vars.length === 2) {
          scope.set(n.vars[0]!, k);
          scope.set(n.vars[1]!, x);
        }
        out += run(n.body, x, scope);
      }
    }
  }
  return out;
}

export function executeTemplate(tpl: string, data: unknown): string {
  return run(parseTemplate(tpl), data, new Map([["$", data]]));
}
