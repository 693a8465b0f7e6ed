// Bundles the berth CLI's entry into one CommonJS file, <outDir>/bin/berth.cjs: the entry, the
// argument parsing, the verb table and `version` (with its small gRPC client) load from one file
// without the ESM loader (~10 ms of start-up). Every other verb stays a dynamic import() of its
// own module under <outDir>, loaded only when used. Usage: node scripts/bundle-cli.mjs dist
import { join, relative, resolve } from "node:path";
import * as esbuild from "esbuild";

const outDir = resolve(process.argv[2] ?? "dist");
const binDir = join(outDir, "bin");
/** Modules `berth version` needs, bundled although imported lazily. */
const bundled = new Set([join(outDir, "cli", "version.js")]);

const result = await esbuild.build({
  entryPoints: [join(binDir, "berth.js")],
  outfile: join(binDir, "berth.cjs"),
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  logLevel: "silent",
  plugins: [
    {
      name: "lazy-verbs",
      setup(build) {
        build.onResolve({ filter: /.*/ }, (args) => {
          if (args.kind !== "dynamic-import") return undefined;
          const target = resolve(args.resolveDir, args.path);
          if (bundled.has(target)) return undefined;
          // kept as import(), relative to the bundle in bin/
          const path = relative(binDir, target);
          return { path: path.startsWith(".") ? path : `./${path}`, external: true };
        });
      },
    },
  ],
});
// import.meta and friends do not survive in CommonJS: any warning is a broken bundle.
const problems = [...result.errors, ...result.warnings];
if (problems.length > 0) {
  const text = await esbuild.formatMessages(problems, { kind: "error" });
  console.error(text.join("\n"));
  process.exit(1);
}
