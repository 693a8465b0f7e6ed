/**
 * Scrubbing image references for logs and messages: the `user:secret@` some users put before
 * the registry host. String-level only, so the error boundary can use it without the image code.
 */

/** A digest in any algorithm ("sha256:…", "blake3:…"): what may follow an "@" in a reference. */
export const DIGEST_SHAPE_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

/**
 * True when `input` carries credentials before the registry host: `user:secret@host/repo`,
 * `user@host/repo`, `user:secret@host`. (`name@sha256:…` and `name:tag@sha256:…` are digests.)
 */
export function hasCredentials(input: string): boolean {
  const s = input.trim();
  const at = s.indexOf("@");
  if (at < 0) return false;
  const after = s.slice(at + 1);
  // Nothing after a digest has a '/': a '/' after the '@' means the '@' precedes the host.
  if (after.includes("/")) return true;
  const digestLike = /^sha(256|512):/.test(after) || DIGEST_SHAPE_RE.test(after);
  return !digestLike && s.slice(0, at).includes(":");
}

/**
 * `input` safe to log: the credentials of a reference that has some are replaced by
 * `<credentials>` (all of it when no registry host can be told apart from them).
 */
export function redactReference(input: string): string {
  if (!hasCredentials(input)) return input;
  const s = input.trim();
  let cut = -1;
  for (let i = s.indexOf("@"); i >= 0; i = s.indexOf("@", i + 1)) {
    if (s.indexOf("/", i) > i) cut = i;
  }
  return cut >= 0 ? `<credentials>@${s.slice(cut + 1)}` : "<reference with credentials>";
}

/** `url` safe to show: a `user:secret@` before its host becomes `<credentials>@`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1<credentials>@");
}
