/**
 * Pure: shell completion scripts (bash, zsh, fish) generated from the program's options, so
 * they never fall out of step with --help. Option values with a fixed set (--detail,
 * --provider, --preset, --completion) complete to those; file options complete to files.
 */

export interface CompletionOption {
  flags: string[];
  description: string;
  takesValue: boolean;
  choices: readonly string[] | undefined;
  valueName: string | undefined;
}

const FILE_VALUES = /file|path|json/i;

function long(option: CompletionOption): string | undefined {
  return option.flags.find((f) => f.startsWith('--'));
}

function short(option: CompletionOption): string | undefined {
  return option.flags.find((f) => /^-[^-]$/.test(f));
}

export function completionScript(
  shell: 'bash' | 'zsh' | 'fish',
  options: readonly CompletionOption[],
): string {
  switch (shell) {
    case 'bash':
      return bash(options);
    case 'zsh':
      return zsh(options);
    case 'fish':
      return fish(options);
  }
}

function shellWords(words: readonly string[]): string {
  return words.map((w) => w.replace(/[^A-Za-z0-9._\-/+]/g, '')).join(' ');
}

function bash(options: readonly CompletionOption[]): string {
  const all = options.flatMap((o) => o.flags);
  const cases = options
    .filter((o) => o.takesValue)
    .map((o) => {
      const pattern = o.flags.join('|');
      if (o.choices)
        return `    ${pattern}) _describe_image_reply < <(compgen -W "${shellWords(o.choices)}" -- "$cur"); return ;;`;
      if (o.valueName && FILE_VALUES.test(o.valueName))
        return `    ${pattern}) _describe_image_reply < <(compgen -f -- "$cur"); return ;;`;
      return `    ${pattern}) return ;;`;
    });
  return `# bash completion for describe-image. Load it with:
#   source <(describe-image --completion bash)
# or save it as ~/.local/share/bash-completion/completions/describe-image
# compgen prints one candidate a line: read them a line at a time, so that a file name with a
# space (or a * or a [) stays one candidate.
_describe_image_reply() {
  COMPREPLY=()
  local line
  while IFS= read -r line; do COMPREPLY+=("$line"); done
}
_describe_image() {
  local cur prev
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
${cases.join('\n')}
  esac
  if [[ "$cur" == -* ]]; then
    _describe_image_reply < <(compgen -W "${shellWords(all)}" -- "$cur")
    return
  fi
  _describe_image_reply < <(compgen -f -- "$cur")
}
complete -o filenames -o bashdefault -F _describe_image describe-image
`;
}

function zshQuote(text: string): string {
  return text.replace(/[[\]:'\\]/g, (c) => (c === "'" ? "'\\''" : `\\${c}`));
}

function zsh(options: readonly CompletionOption[]): string {
  const specs = options.map((o) => {
    // '(-m --model)'{-m,--model}'[…]': the two names exclude each other.
    const names =
      o.flags.length > 1 ? `'(${o.flags.join(' ')})'{${o.flags.join(',')}}` : (o.flags[0] ?? '');
    const description = zshQuote(o.description.split(' (')[0] ?? o.description);
    let action = '';
    if (o.takesValue) {
      const value = o.valueName ?? 'value';
      if (o.choices) action = `:${value}:(${shellWords(o.choices)})`;
      else if (FILE_VALUES.test(value)) action = `:${value}:_files`;
      else action = `:${value}: `;
    }
    return `    ${names}'[${description}]${action}'`;
  });
  return `#compdef describe-image
# zsh completion for describe-image. Save it as _describe-image in a folder on your $fpath
# (before compinit runs), or load it after compinit with:
#   source <(describe-image --completion zsh)
_describe-image() {
  _arguments -s -S \\
${specs.join(' \\\n')} \\
    '*:image or prompt:_files'
}
# Autoloaded from $fpath, this file is the body of _describe-image, run on the first TAB: it
# has just defined the function, which zsh does not call again by itself, so call it now.
# Sourced, register it (compdef exists once compinit has run).
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _describe-image "$@"
elif (( \${+functions[compdef]} )); then
  compdef _describe-image describe-image
fi
`;
}

function fishQuote(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function fish(options: readonly CompletionOption[]): string {
  const lines = options.map((o) => {
    const parts = ['complete -c describe-image'];
    const l = long(o);
    const s = short(o);
    if (s) parts.push(`-s ${s.slice(1)}`);
    if (l) parts.push(`-l ${l.slice(2)}`);
    if (o.takesValue) {
      if (o.choices) parts.push(`-x -a ${fishQuote(o.choices.join(' '))}`);
      else if (o.valueName && FILE_VALUES.test(o.valueName)) parts.push('-r -F');
      else parts.push('-x');
    }
    parts.push(`-d ${fishQuote(o.description.split(' (')[0] ?? o.description)}`);
    return parts.join(' ');
  });
  return `# fish completion for describe-image. Load it with:
#   describe-image --completion fish | source
# or save it as ~/.config/fish/completions/describe-image.fish
${lines.join('\n')}
`;
}
