/**
 * OCI image-spec structures (also covering Docker schema 2) and validating parsers. The parsers
 * reject malformed JSON and missing / mistyped required fields with invalidArgument; unknown
 * fields are dropped. Docker's habit of writing `null` for empty optional fields is tolerated.
 */
import { invalidArgument, unimplemented } from "../../common/errors.js";
import { validateDigest } from "../reference.js";
import { isIndexMediaType, isManifestMediaType, isSchema1MediaType, MediaType } from "./media-types.js";
import type { Platform } from "./platform.js";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** The `config` section of an image config (the runtime defaults of the image). */
export interface ContainerConfig {
  User?: string;
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
  created?: string;
  author?: string;
  config?: ContainerConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: HistoryEntry[];
}

type Json = Record<string, unknown>;

class Checker {
  constructor(readonly what: string) {}

  fail(msg: string): never {
    throw invalidArgument(`invalid ${this.what}: ${msg}`);
  }

  object(v: unknown, field: string): Json {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(`${field} must be a JSON object`);
    return v as Json;
  }

  optObject(v: unknown, field: string): Json | undefined {
    return v === undefined || v === null ? undefined : this.object(v, field);
  }

  string(v: unknown, field: string): string {
    if (typeof v !== "string") this.fail(`${field} must be a string`);
    return v;
  }

  nonEmpty(v: unknown, field: string): string {
    const s = this.string(v, field);
    if (s === "") this.fail(`${field} must not be empty`);
    return s;
  }

  optString(v: unknown, field: string): string | undefined {
    return v === undefined || v === null ? undefined : this.string(v, field);
  }

  optBool(v: unknown, field: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") this.fail(`${field} must be a boolean`);
    return v;
  }

  stringArray(v: unknown, field: string): string[] {
    if (!Array.isArray(v)) this.fail(`${field} must be an array of strings`);
    for (const [i, x] of v.entries()) this.string(x, `${field}[${i}]`);
    return v as string[];
  }

  optStringArray(v: unknown, field: string): string[] | undefined {
    return v === undefined || v === null ? undefined : this.stringArray(v, field);
  }

  optStringMap(v: unknown, field: string): Record<string, string> | undefined {
    const o = this.optObject(v, field);
    if (o === undefined) return undefined;
    for (const [k, x] of Object.entries(o)) this.string(x, `${field}[${shown(k)}]`);
    return o as Record<string, string>;
  }

  optSet(v: unknown, field: string): Record<string, object> | undefined {
    const o = this.optObject(v, field);
    if (o === undefined) return undefined;
    // Each value is an empty object by the spec: whatever it holds is dropped (as Go's struct{}
    // does), so a hostile one cannot ride along. fromEntries defines own properties: a
    // "__proto__" key stays a key, not the prototype.
    return Object.fromEntries(
      Object.entries(o).map(([k, x]) => {
        this.optObject(x, `${field}[${shown(k)}]`);
        return [k, {}];
      }),
    );
  }

  digest(v: unknown, field: string): string {
    const s = this.string(v, field);
    try {
      return validateDigest(s, field);
    } catch (e) {
      this.fail((e as Error).message.replace(/^invalid /, ""));
    }
  }

  size(v: unknown, field: string): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      this.fail(`${field} must be a non-negative integer`);
    }
    return v;
  }

  platform(v: unknown, field: string): Platform | undefined {
    const o = this.optObject(v, field);
    if (o === undefined) return undefined;
    const p: Platform = {
      architecture: this.string(o["architecture"], `${field}.architecture`),
      os: this.string(o["os"], `${field}.os`),
    };
    setIf(p, "os.version", this.optString(o["os.version"], `${field}.os.version`));
    setIf(p, "os.features", this.optStringArray(o["os.features"], `${field}.os.features`));
    setIf(p, "variant", this.optString(o["variant"], `${field}.variant`));
    setIf(p, "features", this.optStringArray(o["features"], `${field}.features`));
    return p;
  }

  descriptor(v: unknown, field: string): Descriptor {
    const o = this.object(v, field);
    const d: Descriptor = {
      mediaType: this.nonEmpty(o["mediaType"], `${field}.mediaType`),
      digest: this.digest(o["digest"], `${field}.digest`),
      size: this.size(o["size"], `${field}.size`),
    };
    setIf(d, "urls", this.optStringArray(o["urls"], `${field}.urls`));
    setIf(d, "annotations", this.optStringMap(o["annotations"], `${field}.annotations`));
    setIf(d, "platform", this.platform(o["platform"], `${field}.platform`));
    setIf(d, "artifactType", this.optString(o["artifactType"], `${field}.artifactType`));
    return d;
  }

  descriptors(v: unknown, field: string): Descriptor[] {
    if (!Array.isArray(v)) this.fail(`${field} must be an array`);
    return v.map((x, i) => this.descriptor(x, `${field}[${i}]`));
  }
}

/** A found value for a message: JSON, cut short (a hostile value may be huge or too deep to stringify). */
function shown(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? "an array" : typeof v;
  }
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function setIf<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) obj[key] = value;
}

function parseJson(bytes: Uint8Array | string, c: Checker): Json {
  let v: unknown;
  try {
    v = JSON.parse(typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8"));
  } catch (e) {
    c.fail(`not valid JSON (${(e as Error).message})`);
  }
  return c.object(v, "document");
}

function schema1Error() {
  return unimplemented(
    "Docker image manifest schema 1 is not supported (deprecated format); re-push the image with a current client",
  );
}

function checkSchemaVersion(o: Json, c: Checker): void {
  if (o["schemaVersion"] === 1) throw schema1Error();
  if (o["schemaVersion"] !== 2) c.fail(`schemaVersion must be 2, got ${shown(o["schemaVersion"])}`);
}

/** Checks the `mediaType` field in the body against the type the registry announced. */
function checkBodyMediaType(o: Json, mediaType: string, c: Checker): void {
  const body = c.optString(o["mediaType"], "mediaType");
  if (body !== undefined && body !== mediaType) {
    c.fail(`mediaType ${shown(body)} in the document does not match ${JSON.stringify(mediaType)}`);
  }
}

/** Parses an OCI image manifest or Docker schema 2 manifest. */
export function parseManifest(
  bytes: Uint8Array | string,
  mediaType: string = MediaType.OciManifest,
): ImageManifest {
  if (isSchema1MediaType(mediaType)) throw schema1Error();
  const c: Checker = new Checker("image manifest");
  if (!isManifestMediaType(mediaType)) c.fail(`unsupported media type ${JSON.stringify(mediaType)}`);
  const o = parseJson(bytes, c);
  checkSchemaVersion(o, c);
  checkBodyMediaType(o, mediaType, c);
  if (o["manifests"] !== undefined) c.fail("has a manifests field (is it an image index?)");
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: c.descriptor(o["config"], "config"),
    layers: c.descriptors(o["layers"], "layers"),
  };
  setIf(m, "artifactType", c.optString(o["artifactType"], "artifactType"));
  if (o["subject"] !== undefined && o["subject"] !== null) m.subject = c.descriptor(o["subject"], "subject");
  setIf(m, "annotations", c.optStringMap(o["annotations"], "annotations"));
  return m;
}

/** Parses an OCI image index or Docker manifest list. */
export function parseIndex(bytes: Uint8Array | string, mediaType: string = MediaType.OciIndex): ImageIndex {
  const c: Checker = new Checker("image index");
  if (!isIndexMediaType(mediaType)) c.fail(`unsupported media type ${JSON.stringify(mediaType)}`);
  const o = parseJson(bytes, c);
  checkSchemaVersion(o, c);
  checkBodyMediaType(o, mediaType, c);
  const idx: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests: c.descriptors(o["manifests"], "manifests"),
  };
  setIf(idx, "artifactType", c.optString(o["artifactType"], "artifactType"));
  if (o["subject"] !== undefined && o["subject"] !== null)
    idx.subject = c.descriptor(o["subject"], "subject");
  setIf(idx, "annotations", c.optStringMap(o["annotations"], "annotations"));
  return idx;
}

/**
 * Works out the media type of a manifest body whose Content-Type was missing or generic:
 * the body's `mediaType` field, else the shape (manifests[] → OCI index, config+layers → OCI manifest).
 */
export function sniffManifestMediaType(bytes: Uint8Array | string): string {
  const c: Checker = new Checker("manifest");
  const o = parseJson(bytes, c);
  if (o["schemaVersion"] === 1) throw schema1Error();
  const mt = o["mediaType"];
  if (typeof mt === "string" && mt !== "") return mt;
  if (Array.isArray(o["manifests"])) return MediaType.OciIndex;
  if (o["config"] !== undefined && Array.isArray(o["layers"])) return MediaType.OciManifest;
  c.fail(
    "cannot tell whether the document is an image manifest or an index (no mediaType, manifests or layers)",
  );
}

/** Parses an image config (application/vnd.oci.image.config.v1+json / Docker container image v1). */
export function parseImageConfig(bytes: Uint8Array | string): ImageConfig {
  const c: Checker = new Checker("image config");
  const o = parseJson(bytes, c);
  const rootfs = c.object(o["rootfs"], "rootfs");
  if (rootfs["type"] !== "layers") c.fail(`rootfs.type must be "layers", got ${shown(rootfs["type"])}`);
  const diffIds = c.stringArray(rootfs["diff_ids"], "rootfs.diff_ids");
  for (const [i, d] of diffIds.entries()) c.digest(d, `rootfs.diff_ids[${i}]`);
  const cfg: ImageConfig = {
    architecture: c.nonEmpty(o["architecture"], "architecture"),
    os: c.nonEmpty(o["os"], "os"),
    rootfs: { type: "layers", diff_ids: diffIds },
  };
  setIf(cfg, "variant", c.optString(o["variant"], "variant"));
  setIf(cfg, "os.version", c.optString(o["os.version"], "os.version"));
  setIf(cfg, "os.features", c.optStringArray(o["os.features"], "os.features"));
  setIf(cfg, "created", c.optString(o["created"], "created"));
  setIf(cfg, "author", c.optString(o["author"], "author"));
  const rc = c.optObject(o["config"], "config");
  if (rc !== undefined) {
    const cc: ContainerConfig = {};
    setIf(cc, "User", c.optString(rc["User"], "config.User"));
    setIf(cc, "Env", c.optStringArray(rc["Env"], "config.Env"));
    setIf(cc, "Cmd", c.optStringArray(rc["Cmd"], "config.Cmd"));
    setIf(cc, "Entrypoint", c.optStringArray(rc["Entrypoint"], "config.Entrypoint"));
    setIf(cc, "WorkingDir", c.optString(rc["WorkingDir"], "config.WorkingDir"));
    setIf(cc, "ExposedPorts", c.optSet(rc["ExposedPorts"], "config.ExposedPorts"));
    setIf(cc, "Volumes", c.optSet(rc["Volumes"], "config.Volumes"));
    setIf(cc, "Labels", c.optStringMap(rc["Labels"], "config.Labels"));
    setIf(cc, "StopSignal", c.optString(rc["StopSignal"], "config.StopSignal"));
    setIf(cc, "ArgsEscaped", c.optBool(rc["ArgsEscaped"], "config.ArgsEscaped"));
    cfg.config = cc;
  }
  if (o["history"] !== undefined && o["history"] !== null) {
    if (!Array.isArray(o["history"])) c.fail("history must be an array");
    cfg.history = o["history"].map((h: unknown, i: number) => {
      const ho = c.object(h, `history[${i}]`);
      const e: HistoryEntry = {};
      setIf(e, "created", c.optString(ho["created"], `history[${i}].created`));
      setIf(e, "created_by", c.optString(ho["created_by"], `history[${i}].created_by`));
      setIf(e, "author", c.optString(ho["author"], `history[${i}].author`));
      setIf(e, "comment", c.optString(ho["comment"], `history[${i}].comment`));
      setIf(e, "empty_layer", c.optBool(ho["empty_layer"], `history[${i}].empty_layer`));
      return e;
    });
  }
  return cfg;
}
