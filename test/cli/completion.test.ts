/**
 * Shell completion: the scripts the CLI prints load in bash (and, when installed, parse in zsh
 * and fish), and bash's completion function completes options, their values and file names
 * (spaces included). The zsh file works both sourced and autoloaded from $fpath, where the
 * first TAB must already complete. The scripts are generated from the program's options, so
 * they are compared with --help too.
 */
import { execFile } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/images.js';

function has(shell: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${shell}`], { stdio: 'ignore' }).status === 0;
}
const HAS_BASH = has('bash');
const HAS_ZSH = has('zsh');
const HAS_FISH = has('fish');

interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function shell(
  program: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<ShellResult> {
  return new Promise((resolve) => {
    execFile(
      program,
      args,
      {
        cwd: opts.cwd,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          LANG: 'C.UTF-8',
          ...opts.env,
        },
        timeout: 15_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let dir: string;
const scripts: Record<'bash' | 'zsh' | 'fish', string> = { bash: '', zsh: '', fish: '' };
const files: Record<'bash' | 'zsh' | 'fish', string> = { bash: '', zsh: '', fish: '' };
let help = '';

beforeAll(async () => {
  dir = await tempDir('describe-image-completion-');
  const env = { DESCRIBE_IMAGE_CONFIG: path.join(dir, 'no-config.json') };
  for (const name of ['bash', 'zsh', 'fish'] as const) {
    const r = await runCli(['--completion', name], { env, cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    scripts[name] = r.stdout;
    files[name] = path.join(dir, `completion.${name}`);
    await writeFile(files[name], r.stdout);
  }
  help = (await runCli(['--help'], { env, cwd: dir })).stdout;
  // Files for file-name completion.
  const work = path.join(dir, 'work');
  await mkdir(work);
  for (const name of ['receipt.json', 'cat.png', 'cat-2.jpg', 'notes.txt'])
    await writeFile(path.join(work, name), '');
  // Names a shell would split or glob.
  const odd = path.join(dir, 'odd');
  await mkdir(odd);
  for (const name of ['my photo.png', 'my receipt.json', 'a*b.png', 'ab.png', 'axb.png'])
    await writeFile(path.join(odd, name), '');
  // The zsh script installed as the README says: _describe-image in a folder on $fpath.
  await mkdir(path.join(dir, 'zfunc'));
  await writeFile(path.join(dir, 'zfunc', '_describe-image'), scripts.zsh);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Long options --help lists (the `--no-x` forms included). */
function helpOptions(): string[] {
  return [...new Set([...help.matchAll(/(?:^|[\s,])(--[a-z][a-z-]*)/gm)].map((m) => m[1]!))];
}

describe('--completion', () => {
  it('an unknown shell is exit 2', async () => {
    const r = await runCli(['--completion', 'powershell'], {
      env: { DESCRIBE_IMAGE_CONFIG: path.join(dir, 'no-config.json') },
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/powershell/);
  });

  it('needs no config file, key or image', async () => {
    const r = await runCli(['--completion', 'bash'], {
      env: { DESCRIBE_IMAGE_CONFIG: path.join(dir, 'missing', 'dir', 'config.json') },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(scripts.bash);
  });

  it('every script names every long option that --help lists', () => {
    const options = helpOptions();
    expect(options).toContain('--detail');
    expect(options).toContain('--no-stream');
    expect(options.length).toBeGreaterThan(30);
    for (const option of options) {
      expect(scripts.bash, `bash: ${option}`).toMatch(
        new RegExp(`(^|[\\s"|(])${option}([\\s")|]|$)`),
      );
      expect(scripts.zsh, `zsh: ${option}`).toContain(option);
      expect(scripts.fish, `fish: -l ${option.slice(2)}`).toMatch(
        new RegExp(`-l ${option.slice(2)}( |$)`, 'm'),
      );
    }
  });
});

describe.skipIf(!HAS_BASH)('bash', () => {
  it('loads without error from a process substitution, and registers the function', async () => {
    const r = await shell(
      'bash',
      [
        '--norc',
        '--noprofile',
        '-c',
        `source <("${process.execPath}" "${BIN}" --completion bash) && complete -p describe-image`,
      ],
      { env: { DESCRIBE_IMAGE_CONFIG: path.join(dir, 'no-config.json') } },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const line = r.stdout.trim();
    expect(line).toMatch(/^complete (-o \w+ )+-F _describe_image describe-image$/);
    expect(line).toContain('-o filenames');
  });

  it('passes bash -n and loads under set -eu', async () => {
    expect((await shell('bash', ['-n', files.bash])).code).toBe(0);
    const r = await shell('bash', [
      '--norc',
      '--noprofile',
      '-c',
      `set -eu; source "${files.bash}"; type -t _describe_image`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function');
  });

  /** What _describe_image offers for the words of a command line (the last is the cursor's). */
  async function complete(words: string[], cwd = path.join(dir, 'work')): Promise<string[]> {
    const quoted = words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(' ');
    const r = await shell(
      'bash',
      [
        '--norc',
        '--noprofile',
        '-c',
        `source "${files.bash}"
COMP_WORDS=(${quoted}); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
_describe_image
printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { cwd },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return r.stdout.split('\n').filter((l) => l !== '');
  }

  it('--det completes to --detail', async () => {
    expect(await complete(['describe-image', '--det'])).toEqual(['--detail']);
  });

  it('--detail then a space offers auto low high', async () => {
    expect(await complete(['describe-image', '--detail', ''])).toEqual(['auto', 'low', 'high']);
    expect(await complete(['describe-image', 'cat.png', '--detail', 'h'])).toEqual(['high']);
  });

  it('--provider o offers openai openrouter ollama', async () => {
    expect(await complete(['describe-image', '--provider', 'o'])).toEqual([
      'openai',
      'openrouter',
      'ollama',
    ]);
  });

  it('--provider then a space offers every provider', async () => {
    expect(await complete(['describe-image', '--provider', ''])).toEqual([
      'maxtoken',
      'openai',
      'openrouter',
      'azure',
      'gemini',
      'ollama',
      'lmstudio',
      'vllm',
      'llamacpp',
    ]);
  });

  it('--preset and --completion complete to their values', async () => {
    expect(await complete(['describe-image', '--preset', ''])).toEqual([
      'alt-text',
      'caption',
      'tags',
      'ocr',
      'objects',
    ]);
    expect(await complete(['describe-image', '--preset', 'o'])).toEqual(['ocr', 'objects']);
    expect(await complete(['describe-image', '--completion', 'z'])).toEqual(['zsh']);
  });

  it('option names: --no- forms, and short options', async () => {
    expect(await complete(['describe-image', '--no-'])).toEqual([
      '--no-download',
      '--no-stream',
      '--no-cache',
    ]);
    expect(await complete(['describe-image', '--print'])).toEqual(['--print-config']);
    const all = await complete(['describe-image', '-']);
    for (const option of ['-h', '--help', '-V', '-m', '--model', '-q', '--json', '--save-key'])
      expect(all).toContain(option);
  });

  it('file options and images complete to file names; free values to nothing', async () => {
    expect(await complete(['describe-image', '--schema', 'rec'])).toEqual(['receipt.json']);
    expect((await complete(['describe-image', '-o', 'n'])).sort()).toEqual(['notes.txt']);
    expect((await complete(['describe-image', 'ca'])).sort()).toEqual(['cat-2.jpg', 'cat.png']);
    expect(await complete(['describe-image', '-m', 'gp'])).toEqual([]);
    expect(await complete(['describe-image', '--base-url', 'ht'])).toEqual([]);
  });

  it('a file name with a space, or a glob character, is one candidate', async () => {
    const odd = path.join(dir, 'odd');
    expect(await complete(['describe-image', 'my'], odd)).toEqual([
      'my photo.png',
      'my receipt.json',
    ]);
    expect(await complete(['describe-image', 'cat.png', 'my p'], odd)).toEqual(['my photo.png']);
    expect(await complete(['describe-image', '--schema', 'my r'], odd)).toEqual([
      'my receipt.json',
    ]);
    expect(await complete(['describe-image', '-o', 'my'], odd)).toEqual([
      'my photo.png',
      'my receipt.json',
    ]);
    // Not globbed into ab.png and axb.png.
    expect(await complete(['describe-image', 'a*'], odd)).toEqual(['a*b.png']);
  });

  it('a value word that looks like an option is not completed as one after a value option', async () => {
    // After --prompt comes free text: no option list, no files.
    expect(await complete(['describe-image', '--prompt', '--'])).toEqual([]);
  });
});

describe('zsh', () => {
  /** The script's top-level code after the function's definition, comments left out. */
  function afterFunction(script: string): string[] {
    const lines = script.split('\n');
    const start = lines.indexOf('_describe-image() {');
    expect(start).toBeGreaterThan(0);
    const end = lines.indexOf('}', start);
    expect(end).toBeGreaterThan(start);
    return lines.slice(end + 1).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  }

  it('installed on $fpath, it completes on the first TAB: the file calls the function it defines', () => {
    // compinit autoloads a file whose first line is #compdef; zsh runs the file as the body of
    // _describe-image on the first TAB. Defining the function is not enough (zsh does not call
    // it again): the file must call it, with the arguments, when loaded that way.
    expect(scripts.zsh.split('\n')[0]).toBe('#compdef describe-image');
    expect(afterFunction(scripts.zsh)).toEqual([
      'if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then',
      '  _describe-image "$@"',
      'elif (( ${+functions[compdef]} )); then',
      '  compdef _describe-image describe-image',
      'fi',
    ]);
  });

  it('the script declares the completion and the values', () => {
    expect(scripts.zsh.split('\n')[0]).toBe('#compdef describe-image');
    expect(scripts.zsh).toContain(':level:(auto low high)');
    expect(scripts.zsh).toContain(
      ':name:(maxtoken openai openrouter azure gemini ollama lmstudio vllm llamacpp)',
    );
    expect(scripts.zsh).toContain(':name:(alt-text caption tags ocr objects)');
  });

  it.skipIf(!HAS_BASH)('its quoting is balanced (bash -n reads the same quotes)', async () => {
    const r = await shell('bash', ['-n', files.zsh]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.skipIf(!HAS_ZSH)('zsh -n parses it', async () => {
    const r = await shell('zsh', ['-n', files.zsh]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.skipIf(!HAS_ZSH)(
    'sourced after compinit, it registers _describe-image for describe-image',
    async () => {
      const r = await shell('zsh', [
        '-f',
        '-c',
        `autoload -Uz compinit && compinit -u -D && source "${files.zsh}" && print -r -- \${_comps[describe-image]}`,
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe('_describe-image');
    },
  );

  it.skipIf(!HAS_ZSH)(
    'autoloaded from $fpath, the first call completes (not only the second)',
    async () => {
      // _arguments is replaced by a stand-in that says it ran: the first call of the autoloaded
      // _describe-image must reach it, as the first TAB of a shell does.
      const r = await shell('zsh', [
        '-f',
        '-c',
        `fpath=("${path.join(dir, 'zfunc')}" $fpath)
autoload -Uz compinit && compinit -u -D
print -r -- "registered: \${_comps[describe-image]}"
_arguments() { print -r -- "completing ($#)" }
_describe-image; print -r -- first done
_describe-image; print -r -- second done`,
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual([
        'registered: _describe-image',
        expect.stringMatching(/^completing \(\d+\)$/),
        'first done',
        expect.stringMatching(/^completing \(\d+\)$/),
        'second done',
      ]);
    },
  );

  it.skipIf(!HAS_ZSH)(
    'sourced without compinit, it defines the function and does not fail',
    async () => {
      const r = await shell('zsh', [
        '-f',
        '-c',
        `source "${files.zsh}" && whence -w _describe-image`,
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe('_describe-image: function');
    },
  );
});

describe('fish', () => {
  /** Whether every line's single quotes close, with fish's \' and \\ escapes inside them. */
  function fishQuotesBalanced(script: string): string[] {
    const bad: string[] = [];
    for (const line of script.split('\n')) {
      if (line.startsWith('#')) continue;
      let quoted = false;
      for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (quoted && c === '\\' && (line[i + 1] === "'" || line[i + 1] === '\\')) i++;
        else if (c === "'") quoted = !quoted;
      }
      if (quoted) bad.push(line);
    }
    return bad;
  }

  it('one complete line per option, values exclusive', () => {
    expect(fishQuotesBalanced(scripts.fish)).toEqual([]);
    expect(scripts.fish).toContain("complete -c describe-image -l detail -x -a 'auto low high'");
    expect(scripts.fish).toMatch(/complete -c describe-image -s m -l model -x -d /);
    expect(scripts.fish).toMatch(/complete -c describe-image -l schema -r -F -d /);
  });

  it.skipIf(!HAS_FISH)('fish --no-execute parses it', async () => {
    const r = await shell('fish', ['--no-execute', files.fish]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.skipIf(!HAS_FISH)('fish completes --det, --detail values and --provider o', async () => {
    const ask = async (line: string): Promise<string[]> => {
      const r = await shell('fish', [
        '--no-config',
        '-c',
        `source "${files.fish}"; complete -C '${line}'`,
      ]);
      expect(r.stderr).toBe('');
      return r.stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t')[0]!);
    };
    expect(await ask('describe-image --det')).toEqual(['--detail']);
    expect((await ask('describe-image --detail ')).sort()).toEqual(['auto', 'high', 'low']);
    expect((await ask('describe-image --provider o')).sort()).toEqual([
      'ollama',
      'openai',
      'openrouter',
    ]);
  });
});
