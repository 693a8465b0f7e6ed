/** Berth's pods and containers among the engine's containers: found by id prefix and kind label. */
import { invalidArgument, isBerthError, notFound } from "../../common/errors.js";
import type { DockerEngine } from "../../docker/engine.js";
import { type Kind, kindFilter, L } from "./labels.js";

export interface DockerState {
  Status: string;
  Running: boolean;
  Pid: number;
  ExitCode: number;
  OOMKilled: boolean;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
}

export interface DockerContainer {
  Id: string;
  Name: string;
  Image: string;
  State: DockerState;
  Config: { Labels: Record<string, string> | null; Tty: boolean; OpenStdin: boolean; StdinOnce: boolean };
  HostConfig: { NetworkMode: string; CgroupParent: string };
}

/** An entry of GET /containers/json. */
export interface DockerListEntry {
  Id: string;
  Image: string;
  ImageID: string;
  State: string;
  Created: number;
  Labels: Record<string, string> | null;
}

/** The container of `kind` whose id is `id` or starts with it; NotFound if none, InvalidArgument if ambiguous. */
export async function inspectKind(engine: DockerEngine, kind: Kind, id: string): Promise<DockerContainer> {
  if (id === "") throw invalidArgument(`${kind} id is empty`);
  if (!/^[0-9a-f]{1,64}$/.test(id)) throw notFound(`${kind} "${id}" not found`);
  let c: DockerContainer;
  try {
    c = await engine.json<DockerContainer>("GET", `/containers/${id}/json`);
  } catch (err) {
    if (isBerthError(err, "NotFound")) throw notFound(`${kind} "${id}" not found`);
    if (isBerthError(err, "InvalidArgument")) throw invalidArgument(`${kind} id "${id}" is ambiguous`);
    throw err;
  }
  if (c.Config.Labels?.[L.kind] !== kind || !c.Id.startsWith(id)) throw notFound(`${kind} "${id}" not found`);
  return c;
}

/** Like inspectKind, undefined for an unknown id (Stop and Remove of what is gone succeed). */
export async function findKind(
  engine: DockerEngine,
  kind: Kind,
  id: string,
): Promise<DockerContainer | undefined> {
  try {
    return await inspectKind(engine, kind, id);
  } catch (err) {
    if (isBerthError(err, "NotFound")) return undefined;
    throw err;
  }
}

export function listKind(engine: DockerEngine, kind: Kind, extra: string[] = []): Promise<DockerListEntry[]> {
  return engine
    .json<DockerListEntry[]>("GET", "/containers/json", {
      query: { all: true, filters: kindFilter(kind, extra) },
    })
    .then((l) => l ?? []);
}

/** Stop; already stopped or gone is fine. */
export async function stopContainer(engine: DockerEngine, id: string, timeoutSec: number): Promise<void> {
  try {
    await engine.json("POST", `/containers/${id}/stop`, {
      query: { t: Math.max(0, Math.floor(timeoutSec)) },
    });
  } catch (err) {
    if (!isBerthError(err, "NotFound")) throw err;
  }
}

export async function removeContainer(engine: DockerEngine, id: string): Promise<void> {
  try {
    await engine.json("DELETE", `/containers/${id}`, { query: { force: true, v: true } });
  } catch (err) {
    if (!isBerthError(err, "NotFound")) throw err;
  }
}

/** Capabilities this engine does not know (Docker 20.10 predates CAP_PERFMON, CAP_BPF, …). */
const unknownCaps = new Set<string>();

/**
 * POST /containers/create. A capability the engine does not know is left out (it could not
 * grant it anyway) and the create retried: "ALL" and privileged are berthd's bounding set,
 * which may name newer capabilities than the engine.
 */
export async function createContainer(
  engine: DockerEngine,
  name: string,
  body: Record<string, unknown>,
): Promise<string> {
  const hc = body["HostConfig"] as { CapAdd?: string[] } | undefined;
  for (;;) {
    if (hc?.CapAdd) hc.CapAdd = hc.CapAdd.filter((c) => !unknownCaps.has(c));
    try {
      return (await engine.json<{ Id: string }>("POST", "/containers/create", { query: { name }, body })).Id;
    } catch (err) {
      const cap = /unknown capability: "(CAP_\w+)"/.exec((err as Error).message)?.[1];
      if (!cap || unknownCaps.has(cap) || !isBerthError(err, "InvalidArgument")) throw err;
      unknownCaps.add(cap);
    }
  }
}
