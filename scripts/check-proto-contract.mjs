// Compares the wire contract of proto/runtime/v1/api.proto with an upstream CRI api.proto:
// package, services, methods (and their streaming), messages, enums, field names, numbers,
// types and labels must be identical. Comments and gogoproto options are ignored.
// usage: node scripts/check-proto-contract.mjs PATH/TO/upstream/api.proto
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const upstream = process.argv[2];
if (!upstream) {
  console.error("usage: node scripts/check-proto-contract.mjs PATH/TO/upstream/api.proto");
  process.exit(2);
}
const root = new URL("..", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "berth-contract-"));
try {
  // A stub of gogo.proto so protoc accepts the upstream file; the options carry no wire meaning.
  const gogoDir = join(tmp, "github.com/gogo/protobuf/gogoproto");
  mkdirSync(gogoDir, { recursive: true });
  const options = readFileSync(upstream, "utf8").match(/gogoproto\.[a-z_]+/g) ?? [];
  const names = [...new Set(options.map((o) => o.slice("gogoproto.".length)))];
  writeFileSync(
    join(gogoDir, "gogo.proto"),
    `syntax = "proto2";\npackage gogoproto;\nimport "google/protobuf/descriptor.proto";\n` +
      `extend google.protobuf.FileOptions {\n${names.map((n, i) => `  optional bool ${n} = ${63001 + i};`).join("\n")}\n}\n` +
      `extend google.protobuf.FieldOptions {\n${names.map((n, i) => `  optional bool ${n}_f = ${65001 + i};`).join("\n")}\n}\n`,
  );
  mkdirSync(join(tmp, "up"), { recursive: true });
  copyFileSync(upstream, join(tmp, "up/api.proto"));
  const describe = (includes, file) => {
    const out = join(tmp, `${includes.length}.pb`);
    execFileSync("protoc", [...includes.map((i) => `-I${i}`), `--descriptor_set_out=${out}`, file]);
    return fromBinary(FileDescriptorSetSchema, readFileSync(out)).file[0];
  };
  const ours = describe([join(root, "proto")], "runtime/v1/api.proto");
  const theirs = describe([join(tmp, "up"), tmp], "api.proto");

  const shape = (fd) => ({
    package: fd.package,
    services: fd.service.map((s) => ({
      name: s.name,
      methods: s.method.map((m) => [
        m.name,
        m.inputType,
        m.outputType,
        !!m.clientStreaming,
        !!m.serverStreaming,
      ]),
    })),
    messages: flatten(fd.messageType, `.${fd.package}`),
    enums: fd.enumType.map((e) => [e.name, e.value.map((v) => [v.name, v.number])]),
  });
  const flatten = (msgs, prefix) =>
    msgs.flatMap((m) => [
      {
        name: `${prefix}.${m.name}`,
        fields: m.field.map((f) => [f.name, f.number, f.type, f.label, f.typeName, f.oneofIndex ?? -1]),
        enums: m.enumType.map((e) => [e.name, e.value.map((v) => [v.name, v.number])]),
        map: !!m.options?.mapEntry,
      },
      ...flatten(m.nestedType, `${prefix}.${m.name}`),
    ]);
  const a = JSON.stringify(shape(ours), null, 1);
  const b = JSON.stringify(shape(theirs), null, 1);
  if (a === b) {
    const s = shape(ours);
    console.log(
      `wire contract identical: ${s.services.length} services, ${s.services.reduce((n, x) => n + x.methods.length, 0)} methods, ${s.messages.length} messages, ${s.messages.reduce((n, m) => n + m.fields.length, 0)} fields`,
    );
  } else {
    writeFileSync(join(tmp, "ours.json"), a);
    writeFileSync(join(tmp, "theirs.json"), b);
    const diff = spawnSync("diff", ["-u", join(tmp, "theirs.json"), join(tmp, "ours.json")], {
      encoding: "utf8",
    });
    console.error(diff.stdout.slice(0, 4000));
    process.exitCode = 1;
  }
} catch (err) {
  if (err.stdout) console.error(err.stdout.toString().slice(0, 4000));
  else console.error(err.message);
  process.exitCode = 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
