/**
 * Inputs that once broke expansion, end to end: the built CLI spawned against a loopback
 * server that counts requests. A quoted glob with a space in a folder name; prompts with `?`
 * and `*` that must stay prompts.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir, writeImage } from '../helpers/images.js';
import { okHandler, serverPool, type RecordedRequest } from '../helpers/server.js';

const serve = serverPool();
let root: string;

/** The text part of a request: the prompt the model was given. */
function promptOf(req: RecordedRequest): string | undefined {
  const messages = req.json?.messages as { role: string; content: unknown }[];
  const parts = messages.find((m) => m.role === 'user')?.content as {
    type: string;
    text?: string;
  }[];
  return parts.find((p) => p.type === 'text')?.text;
}

function headers(stdout: string): string[] {
  return [...stdout.matchAll(/^==> (.*) <==$/gm)].map((m) => m[1]!);
}

beforeAll(async () => {
  root = await tempDir('describe-image-expansion-');
  await mkdir(path.join(root, 'My Photos'));
  await writeImage(root, 'My Photos/beach.jpg', 'jpeg', { color: '#208040' });
  await writeImage(root, 'My Photos/IMG_0042.JPG', 'jpeg', { color: '#802040' });
  await writeImage(root, 'cat.png');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('a glob with a space in a folder name', () => {
  it('is a glob as the last argument (it matches), in any case of the extension', async () => {
    const server = await serve(okHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'My Photos/*.jpg'], { cwd: root });
    expect(r.stderr).not.toMatch(/no such file|no image given/);
    expect(r.code).toBe(0);
    expect(headers(r.stdout)).toEqual(['My Photos/IMG_0042.JPG', 'My Photos/beach.jpg']);
    expect(server.requests).toHaveLength(2);
    expect(promptOf(server.requests[0]!)).toBe('What is in this image?');
  });

  it('is a glob before a prompt too', async () => {
    const server = await serve(okHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'My Photos/*.jpg', 'Where is this?'], {
      cwd: root,
    });
    expect(r.code).toBe(0);
    expect(server.requests).toHaveLength(2);
    for (const req of server.requests) expect(promptOf(req)).toBe('Where is this?');
  });
});

describe('a prompt with glob characters is still the prompt', () => {
  it.each(['What is this?', 'Is this a *cat*?', 'why?', 'Which one [left or right]?'])(
    '%j',
    async (prompt) => {
      const server = await serve(okHandler({ text: 'A cat.' }));
      const r = await runCli(['--base-url', server.baseUrl, 'cat.png', prompt], { cwd: root });
      expect(r.stderr).not.toMatch(/error|no files match/);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('A cat.\n');
      expect(server.requests).toHaveLength(1);
      expect(promptOf(server.requests[0]!)).toBe(prompt);
    },
  );
});
