/**
 * README.md says what the tool does: the script example that reports a failure is run in
 * bash against the built CLI, and the --keep-metadata row is read against what preparation
 * keeps (test/input/prepare-colour.test.ts: the ICC profile stays, EXIF goes).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/images.js';

let readme: string;
let dir: string;

beforeAll(async () => {
  readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  dir = await tempDir('describe-image-readme-');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The lines of the README's ```sh blocks. */
function shellLines(): string[] {
  return [...readme.matchAll(/^```sh\n([\s\S]*?)^```/gm)].flatMap((m) => m[1]!.split('\n'));
}

function bash(script: string, env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['--norc', '--noprofile', '-c', script], { cwd: dir, env }, (error, out) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, out });
    });
  });
}

describe('README examples', () => {
  it('the script line that reports a failure prints the exit code the tool returned', async () => {
    const lines = shellLines().filter((l) => l.includes('failed with $?'));
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    // `describe-image` on PATH is the built CLI; no key and no such image, so it fails.
    const bin = path.join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(
      path.join(bin, 'describe-image'),
      `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`,
    );
    await chmod(path.join(bin, 'describe-image'), 0o755);
    const env = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: dir,
      LANG: 'C.UTF-8',
      DESCRIBE_IMAGE_CONFIG: path.join(dir, 'no-config.json'),
    };
    const args = /describe-image ([^>|;]*?)\s*>/.exec(line)?.[1]?.split(' ');
    expect(args, line).toBeDefined();
    const direct = await runCli(args!, { cwd: dir, env });
    expect(direct.code).not.toBe(0);

    const r = await bash(line, env);
    expect(r.out).toBe(`failed with ${direct.code}\n`);
  });

  it('the --keep-metadata row says the ICC profile is kept without it, as the tool does', () => {
    const row = readme.split('\n').find((l) => l.startsWith('| `--keep-metadata`'));
    expect(row).toBeDefined();
    const meaning = row!.split('|')[2]!.trim();
    // What the option adds is what would otherwise go: the profile stays either way.
    const [keeps, rest] = meaning.split(';');
    expect(keeps).not.toMatch(/\bICC\b/);
    expect(rest).toMatch(/\bICC\b[^;]*\balways kept\b/);
  });
});
