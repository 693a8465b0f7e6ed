/** `berth completion bash|zsh|fish`: completion scripts for the verbs and their options. */
import type { Command } from "./context.js";
import { UsageError } from "./errors.js";
import { verbs } from "./verbs.js";

function optionWords(name: string): string[] {
  const o = verbs[name]?.options ?? {};
  return Object.entries(o).flatMap(([long, spec]) => [
    `--${long}`,
    ...(spec.short ? [`-${spec.short}`] : []),
  ]);
}

export function completionScript(shell: string): string {
  const names = Object.keys(verbs).map((n) => n.split(" ")[0]!);
  const top = [...new Set(names)];
  if (shell === "bash") {
    const cases = Object.keys(verbs)
      .filter((n) => !n.includes(" "))
      .map((n) => `    ${n}) opts="${optionWords(n).join(" ")}" ;;`)
      .join("\n");
    return `# bash completion for berth
_berth() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" verb="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) verb="\${COMP_WORDS[i]}"; break ;; esac
  done
  if [[ -z "$verb" ]]; then
    COMPREPLY=($(compgen -W "${top.join(" ")} --runtime-endpoint --timeout --help --version" -- "$cur"))
    return
  fi
  local opts=""
  case "$verb" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts --help" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -F _berth berth
`;
  }
  if (shell === "zsh") {
    const list = Object.entries(verbs)
      .filter(([n]) => !n.includes(" "))
      .map(([n, v]) => `    '${n}:${v.summary.replace(/'/g, "'\\''").replace(/:/g, "\\:")}'`)
      .join("\n");
    return `#compdef berth
_berth() {
  local -a verbs
  verbs=(
${list}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' verbs
  else
    _files
  fi
}
compdef _berth berth
`;
  }
  if (shell === "fish") {
    return `${Object.entries(verbs)
      .filter(([n]) => !n.includes(" "))
      .map(
        ([n, v]) =>
          `complete -c berth -n __fish_use_subcommand -f -a ${n} -d '${v.summary.replace(/'/g, "\\'")}'\n` +
          Object.entries(v.options ?? {})
            .map(
              ([long, spec]) =>
                `complete -c berth -n '__fish_seen_subcommand_from ${n}' -l ${long}${spec.short ? ` -s ${spec.short}` : ""}${spec.type === "string" ? " -r" : ""}`,
            )
            .join("\n"),
      )
      .join("\n")}\n`;
  }
  throw new UsageError(`unsupported shell "${shell}": want bash, zsh or fish`);
}

export const completion: Command = async ({ args }) => {
  const shell = args[0];
  if (!shell) throw new UsageError("missing SHELL (bash, zsh or fish)");
  process.stdout.write(completionScript(shell));
};
