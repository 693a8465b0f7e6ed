/** OCI Distribution v2 pull client: public surface. */

export { computeDigest, DigestVerifier, verifyBytes } from "../digest.js";
export {
  Authorizer,
  type Challenge,
  type Credentials,
  type CriAuthConfig,
  decodeBasicAuth,
  type HostAuthConfig,
  parseWwwAuthenticate,
  pullScope,
  toCredentials,
} from "./auth.js";
export {
  DEFAULT_MAX_CONFIG_BYTES,
  DEFAULT_MAX_MANIFEST_BYTES,
  type FetchedManifest,
  type PullOptions,
  RegistryClient,
  type RegistryClientOptions,
  RegistrySession,
  type ResolvedImage,
} from "./client.js";
export {
  normalizeServerAddress,
  type RegistryEndpoint,
  type RegistryHostConfig,
  type RegistryHostsConfig,
  type RegistryMirror,
  registryApiHost,
  resolveEndpoints,
} from "./hosts.js";
export * from "./media-types.js";
export * from "./oci.js";
export * from "./platform.js";
