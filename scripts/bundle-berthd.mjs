// Bundles berthd (<outDir>/bin/berthd.js, replaced in place) with its dependencies into ESM:
// one file for what start-up loads, and a chunk per lazily imported part (the registry client,
// the Docker backend, the Prometheus metrics, …) beside it in bin/, loaded at first use. Node then resolves and
// compiles one file instead of ~400 modules: start-up CPU and idle RSS both drop (see the
// README's performance section). bin/ is as deep under <outDir> as every other folder, so
// `new URL("../…", import.meta.url)` paths resolve as they do from the unbundled modules.
// Usage: node scripts/bundle-berthd.mjs dist
import { rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as esbuild from "esbuild";

const outDir = resolve(process.argv[2] ?? "dist");
const binDir = join(outDir, "bin");

// berthd serves gRPC with its own server (src/api/grpc); the generated CRI modules import
// grpc-js only for client constructors it never calls. Declared free of side effects, grpc-js
// is dropped with them (~400 KiB of JavaScript less to load at every start).
const clientsOnly = {
  name: "grpc-js-clients-only",
  setup(build) {
    build.onResolve({ filter: /^@grpc\/grpc-js$/ }, async (args) => {
      if (args.pluginData === "resolving") return undefined;
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        pluginData: "resolving",
      });
      return { ...resolved, sideEffects: false };
    });
  },
};

const result = await esbuild.build({
  entryPoints: [join(binDir, "berthd.js")],
  outdir: binDir,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: "berthd-[hash]",
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "silent",
  // Only grpc-js's channelz and proto loading use these, never berthd: left out of the bundle
  // (~280 KiB less to parse), resolved from node_modules should they ever be required.
  external: ["protobufjs", "protobufjs/*", "@grpc/proto-loader", "long"],
  write: false,
  metafile: true,
  plugins: [clientsOnly],
  // Less source to read and parse (~1 MiB, ~3 MiB RSS); names are kept, so stack traces still
  // name every function.
  minifyWhitespace: true,
  minifySyntax: true,
  // The CommonJS dependencies (grpc-js, pino, …) call require() for Node's own modules.
  banner: {
    js: 'import { createRequire as __berthCreateRequire } from "node:module";\nconst require = __berthCreateRequire(import.meta.url);',
  },
});
const problems = [...result.errors, ...result.warnings];
if (problems.length > 0) {
  const text = await esbuild.formatMessages(problems, { kind: "error" });
  console.error(text.join("\n"));
  process.exit(1);
}
const grpcJs = Object.values(result.metafile.outputs)
  .flatMap((o) => Object.entries(o.inputs))
  .filter(([p, i]) => p.includes("node_modules/@grpc/grpc-js/") && i.bytesInOutput > 0)
  .map(([p]) => p);
if (grpcJs.length > 0) {
  console.error(`berthd's bundle should not contain grpc-js, but it does: ${grpcJs.slice(0, 3).join(", ")}…`);
  process.exit(1);
}
// esbuild escapes non-ASCII characters in code (charset "ascii"), not in comments it keeps: one
// "→" there would make V8 hold the whole file as a two-byte string (2 MiB more), decoded slower.
for (const file of result.outputFiles) {
  await writeFile(
    file.path,
    file.text.replace(/[^\p{ASCII}]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`),
    { mode: 0o755 },
  );
}
// tsc's source map was for the file the bundle replaced.
await rm(join(binDir, "berthd.js.map"), { force: true });
