// Generates typed TypeScript (ts-proto, grpc-js services) from proto/ into src/api/gen.
// The output is committed; CI regenerates it and fails if it differs (`--check`).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const check = process.argv.includes("--check");
const outDir = check ? mkdtempSync(join(tmpdir(), "berth-gen-")) : join(root, "src/api/gen");
const protos = ["runtime/v1/api.proto", "berth/v1/berth.proto"];
const opts = [
  "outputServices=grpc-js",
  "esModuleInterop=true",
  "importSuffix=.js",
  "forceLong=bigint",
  "useOptionals=messages",
  "outputJsonMethods=false",
  "env=node",
].join(",");

if (!check) rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
execFileSync(
  "protoc",
  [
    `--plugin=protoc-gen-ts_proto=${join(root, "node_modules/.bin/protoc-gen-ts_proto")}`,
    `--ts_proto_out=${outDir}`,
    `--ts_proto_opt=${opts}`,
    `-I${join(root, "proto")}`,
    ...protos,
  ],
  { stdio: "inherit" },
);

const files = (dir) =>
  readdirSync(dir).flatMap((f) =>
    statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)],
  );

// The grpc-js client constructors are built when the module loads; marked pure, a bundle that
// never uses them (berthd, which serves with src/api/grpc) leaves them and grpc-js out.
for (const f of files(outDir)) {
  const text = readFileSync(f, "utf8");
  writeFileSync(
    f,
    text.replaceAll("= makeGenericClientConstructor(", "= /* @__PURE__ */ makeGenericClientConstructor("),
  );
}

if (check) {
  const committed = join(root, "src/api/gen");
  let stale = false;
  for (const f of files(outDir)) {
    const rel = relative(outDir, f);
    let old = "";
    try {
      old = readFileSync(join(committed, rel), "utf8");
    } catch {}
    if (old !== readFileSync(f, "utf8")) {
      console.error(`src/api/gen/${rel} is out of date: run npm run gen:proto`);
      stale = true;
    }
  }
  rmSync(outDir, { recursive: true, force: true });
  process.exit(stale ? 1 : 0);
}
