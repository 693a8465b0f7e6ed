/**
 * iLogtail's ContainerFilters: which containers a pipeline collects. Name rules are regexes
 * over the namespace, pod and container names; label and env rules are maps whose values are
 * exact strings, or regexes when written `^…$`, and an empty value matches any value. Within
 * one Include map any entry may match (OR); the kinds of rule must all hold (AND); a match of
 * any Exclude rule wins.
 */
import type { ContainerInfo } from "./container-info.js";

export interface ContainerFiltersConfig {
  K8sNamespaceRegex?: string;
  K8sPodRegex?: string;
  K8sContainerRegex?: string;
  IncludeK8sLabel?: Record<string, string>;
  ExcludeK8sLabel?: Record<string, string>;
  IncludeEnv?: Record<string, string>;
  ExcludeEnv?: Record<string, string>;
  IncludeContainerLabel?: Record<string, string>;
  ExcludeContainerLabel?: Record<string, string>;
}

type ValueMatcher = (value: string | undefined) => boolean;
type MapRule = Array<[string, ValueMatcher]>;

export class ContainerFilter {
  private readonly names: Array<[RegExp, (c: ContainerInfo) => string]> = [];
  private readonly includes: Array<[MapRule, (c: ContainerInfo) => Record<string, string>]> = [];
  private readonly excludes: Array<[MapRule, (c: ContainerInfo) => Record<string, string>]> = [];

  /** Throws an Error naming the key for a bad regex. */
  constructor(cfg: ContainerFiltersConfig = {}) {
    const name = (key: keyof ContainerFiltersConfig, get: (c: ContainerInfo) => string) => {
      const v = cfg[key];
      if (typeof v === "string" && v !== "") this.names.push([compile(v, key), get]);
    };
    name("K8sNamespaceRegex", (c) => c.namespace);
    name("K8sPodRegex", (c) => c.podName);
    name("K8sContainerRegex", (c) => c.name);
    const maps: Array<
      [
        keyof ContainerFiltersConfig,
        keyof ContainerFiltersConfig,
        (c: ContainerInfo) => Record<string, string>,
      ]
    > = [
      ["IncludeK8sLabel", "ExcludeK8sLabel", (c) => c.k8sLabels],
      ["IncludeEnv", "ExcludeEnv", (c) => c.env],
      ["IncludeContainerLabel", "ExcludeContainerLabel", (c) => c.labels],
    ];
    for (const [inc, exc, get] of maps) {
      const i = cfg[inc];
      const e = cfg[exc];
      if (i && typeof i === "object" && Object.keys(i).length > 0) this.includes.push([mapRule(i, inc), get]);
      if (e && typeof e === "object" && Object.keys(e).length > 0) this.excludes.push([mapRule(e, exc), get]);
    }
  }

  matches(c: ContainerInfo): boolean {
    for (const [re, get] of this.names) if (!re.test(get(c))) return false;
    for (const [rule, get] of this.excludes) if (anyMatch(rule, get(c))) return false;
    for (const [rule, get] of this.includes) if (!anyMatch(rule, get(c))) return false;
    return true;
  }
}

function anyMatch(rule: MapRule, values: Record<string, string>): boolean {
  return rule.some(([k, m]) => Object.hasOwn(values, k) && m(values[k]));
}

function mapRule(map: Record<string, string>, key: string): MapRule {
  return Object.entries(map).map(([k, v]): [string, ValueMatcher] => {
    if (v === "") return [k, () => true];
    if (v.startsWith("^") && v.endsWith("$")) {
      const re = compile(v, `${key}.${k}`);
      return [k, (x) => x !== undefined && re.test(x)];
    }
    return [k, (x) => x === v];
  });
}

/** A Go (RE2) style regex as iLogtail configs write them: `(?P<name>…)` becomes `(?<name>…)`. */
export function compile(source: string, key: string, flags = ""): RegExp {
  try {
    return new RegExp(source.replaceAll("(?P<", "(?<"), flags);
  } catch (err) {
    throw new Error(`${key}: bad regex ${JSON.stringify(source)}: ${(err as Error).message}`);
  }
}
