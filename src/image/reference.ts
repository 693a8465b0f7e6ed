/**
 * Image reference parsing, following the normalisation rules of Docker / containerd
 * (github.com/distribution/reference `ParseNormalizedNamed`):
 *
 *   busybox                      → docker.io/library/busybox:latest
 *   user/img                     → docker.io/user/img:latest
 *   index.docker.io/busybox      → docker.io/library/busybox:latest
 *   localhost:5000/x             → localhost:5000/x:latest
 *   [::1]:5000/x                 → [::1]:5000/x:latest
 *   name@sha256:<hex>            → docker.io/library/name@sha256:<hex> (no tag)
 *   name:tag@sha256:<hex>        → tag kept, the digest wins for fetching
 *
 * The first path component is a registry domain when it contains "." or ":", is "localhost",
 * or contains an uppercase letter (Docker's rule); otherwise the image lives on docker.io.
 *
 * Credentials in a reference (`user:secret@registry/repo`) are refused without echoing them:
 * they belong in the pull's auth config. `redactReference` makes any string safe to log.
 */
import { invalidArgument } from "../common/errors.js";
import { DIGEST_SHAPE_RE, hasCredentials, redactReference } from "../common/redact.js";

export { hasCredentials, redactReference };

export interface ImageRef {
  /** Registry host, possibly with port: "docker.io", "localhost:5000", "[::1]:5000". */
  domain: string;
  /** Repository path inside the registry: "library/busybox". */
  path: string;
  /** Tag; "latest" is filled in when the input had neither tag nor digest. */
  tag?: string;
  /** "sha256:<64 hex>" (or "sha512:<128 hex>"); wins over the tag when fetching. */
  digest?: string;
}

export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
const DEFAULT_TAG = "latest";
const NAME_TOTAL_LENGTH_MAX = 255;

// Grammar from github.com/distribution/reference (regexp.go).
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_NAME_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const IPV6_ADDRESS = "\\[(?:[a-fA-F0-9:]+)\\]";
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** Supported digest algorithms and the exact length of their lowercase hex encoding. */
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

/** True for a well-formed, supported digest: "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>". */
export function isDigest(s: string): boolean {
  const i = s.indexOf(":");
  if (i <= 0) return false;
  const len = DIGEST_HEX_LENGTH[s.slice(0, i)];
  if (len === undefined) return false;
  const hex = s.slice(i + 1);
  return hex.length === len && /^[a-f0-9]+$/.test(hex);
}

/** Why `s` is not a supported digest, or undefined when it is one. */
function digestProblem(s: string): string | undefined {
  if (isDigest(s)) return undefined;
  const i = s.indexOf(":");
  const alg = i > 0 ? s.slice(0, i) : "";
  const len = DIGEST_HEX_LENGTH[alg];
  if (len !== undefined) return `expected ${alg}: followed by ${len} lowercase hex characters`;
  if (DIGEST_SHAPE_RE.test(s)) return `unsupported digest algorithm ${quoted(alg)}`;
  return `expected "sha256:" followed by 64 lowercase hex characters`;
}

/** `s` for an error message, cut short: references and digests can come from hostile documents. */
function quoted(s: string): string {
  return JSON.stringify(s.length > 300 ? `${s.slice(0, 300)}…` : s);
}

/** Returns `s` if it is a supported digest; throws invalidArgument with a specific message otherwise. */
export function validateDigest(s: string, what = "digest"): string {
  const problem = digestProblem(s);
  if (problem !== undefined) throw invalidArgument(`invalid ${what} ${quoted(s)}: ${problem}`);
  return s;
}

/** Parses and normalises an image reference; throws invalidArgument on malformed input. */
export function parseReference(input: string): ImageRef {
  const s = input.trim();
  if (hasCredentials(s)) {
    throw invalidArgument(
      `invalid image reference ${quoted(redactReference(s))}: credentials are not allowed in an image reference; ` +
        "give them in the pull request's auth config (e.g. crictl pull --creds, or an image pull secret)",
    );
  }
  const bad = (why: string) => invalidArgument(`invalid image reference ${quoted(input)}: ${why}`);
  if (s === "") throw bad("empty reference");
  if (IDENTIFIER_RE.test(s)) {
    throw bad("cannot specify 64-byte hexadecimal strings as a repository name (is it an image ID?)");
  }

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest.includes("@")) throw bad("more than one '@'");
    const problem = digestProblem(digest);
    if (problem !== undefined) throw bad(`invalid digest ${quoted(digest)}: ${problem}`);
  }

  // The tag is after the last ':' that follows the last '/' (a ':' before that is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw bad(
        `invalid tag ${quoted(tag)} (tags are up to 128 characters of [A-Za-z0-9_.-] and must not start with '.' or '-')`,
      );
    }
  }
  if (rest === "") throw bad("missing repository name");

  let domain: string;
  let path: string;
  const firstSlash = rest.indexOf("/");
  const first = firstSlash >= 0 ? rest.slice(0, firstSlash) : "";
  if (
    firstSlash < 0 ||
    (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first && !first.startsWith("["))
  ) {
    domain = DEFAULT_DOMAIN;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(firstSlash + 1);
  }
  if (!DOMAIN_RE.test(domain)) throw bad(`invalid registry host ${quoted(domain)}`);
  const port = /:(\d+)$/.exec(domain)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw bad(`registry port ${port} is not in 1–65535`);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = OFFICIAL_REPO_PREFIX + path;

  if (path === "") throw bad("missing repository name");
  if (path.toLowerCase() !== path) throw bad(`repository name ${quoted(path)} must be lowercase`);
  if (!PATH_RE.test(path)) {
    throw bad(
      `invalid repository name ${quoted(path)} (path components are lowercase [a-z0-9] separated by '.', '_', '__' or '-')`,
    );
  }
  if (domain.length + 1 + path.length > NAME_TOTAL_LENGTH_MAX) {
    throw bad(`repository name must not be longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }

  const ref: ImageRef = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** "docker.io/library/busybox" */
export function formatName(ref: Pick<ImageRef, "domain" | "path">): string {
  return `${ref.domain}/${ref.path}`;
}

/**
 * Full normalised string: "docker.io/library/busybox:latest", "name@sha256:…", or
 * "name:tag@sha256:…" when both are set.
 */
export function formatRef(ref: ImageRef): string {
  let s = formatName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** What to ask the registry for: the digest when present, else the tag (default "latest"). */
export function fetchReference(ref: ImageRef): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** Splits "host:port", "[v6]:port", "[v6]", "v6" and "host" into the bare host name. */
export function hostWithoutPort(host: string): string {
  const h = host.trim();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 0 ? h.slice(1, end) : h;
  }
  const first = h.indexOf(":");
  if (first >= 0 && first === h.lastIndexOf(":")) return h.slice(0, first);
  return h; // bare IPv6 (several ':') or no port
}

/** localhost, 127.0.0.0/8 and ::1, with or without a port (and IPv6 brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = hostWithoutPort(host).toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m?.slice(1).every((o) => Number(o) <= 255) === true;
}
