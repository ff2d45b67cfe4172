/**
 * Inputs that once broke expansion, end to end: the built CLI spawned against a loopback
 * server that counts requests. A quoted glob with a space in a folder name; prompts with `?`
 * and `*` that must stay prompts; folders with links to themselves and their parents; a FIFO
 * named like an image in a folder; a FIFO, a socket and a device given by name.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { HAS_PROC_FD, hasReader, mkfifo, waitUntilOpen } from '../helpers/fifo.js';
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

  // looped/: a.png, alias.png → a.png, self → ., sub/b.png, sub/up → .. (its parent).
  await mkdir(path.join(root, 'looped/sub'), { recursive: true });
  await writeImage(root, 'looped/a.png', 'png', { color: '#112233' });
  await writeImage(root, 'looped/sub/b.png', 'png', { color: '#445566' });
  await symlink('a.png', path.join(root, 'looped/alias.png'));
  await symlink('.', path.join(root, 'looped/self'));
  await symlink('..', path.join(root, 'looped/sub/up'));

  // withfifo/: a.png and x.png, a FIFO that no one will ever write to.
  await mkdir(path.join(root, 'withfifo'));
  await writeImage(root, 'withfifo/a.png', 'png', { color: '#778899' });
  mkfifo(path.join(root, 'withfifo/x.png'));
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

describe('links', () => {
  it('a folder with links to itself and its parent, and a glob over it: one request per real image', async () => {
    const server = await serve(okHandler());
    const r = await runCli(['--base-url', server.baseUrl, 'looped/*.png', 'looped'], {
      cwd: root,
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(0);
    expect(headers(r.stdout)).toEqual(['looped/a.png', 'looped/sub/b.png']);
    expect(server.requests).toHaveLength(2);
  });
});

describe('files that are not regular files', () => {
  it('a FIFO named x.png in a folder is skipped: the batch finishes with one request', async () => {
    const server = await serve(okHandler());
    const r = await runCli(['--base-url', server.baseUrl, '--debug', 'withfifo'], {
      cwd: root,
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(0);
    expect(headers(r.stdout)).toEqual(['withfifo/a.png']);
    expect(server.requests).toHaveLength(1);
    expect(r.stderr).toMatch(/skipped withfifo\/x\.png: not a regular file/);
    expect(hasReader(path.join(root, 'withfifo/x.png'))).toBe(false);
  });

  it.each(['none', 'silent'] as const)(
    'a FIFO given by name whose writer is %s: Ctrl-C exits 130 at once, nothing sent',
    async (writer) => {
      const fifo = path.join(root, `given-${writer}.png`);
      mkfifo(fifo);
      const server = await serve(okHandler());
      let child: ChildProcess | undefined;
      const running = runCli(['--base-url', server.baseUrl, fifo], {
        cwd: root,
        onSpawn: (c) => (child = c),
        timeoutMs: 20_000,
      });
      let writerFd: number | undefined;
      try {
        // The reader is waiting once the process holds the FIFO open. Before the fix, its
        // open never returned: then Ctrl-C is sent after the wait, and it hangs all the same.
        if (HAS_PROC_FD) await waitUntilOpen(child!.pid!, fifo, 8000);
        if (writer === 'silent')
          writerFd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        child!.kill('SIGINT');
        const r = await running;
        expect(r.code).toBe(130);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/interrupted/);
        expect(server.requests).toHaveLength(0);
      } finally {
        if (writerFd !== undefined) closeSync(writerFd);
        child?.kill('SIGKILL');
      }
    },
  );

  it('--files-from a FIFO no one writes to: Ctrl-C exits 130 at once, nothing sent', async () => {
    const fifo = path.join(root, 'list.fifo');
    mkfifo(fifo);
    const server = await serve(okHandler());
    let child: ChildProcess | undefined;
    const running = runCli(['--base-url', server.baseUrl, '--files-from', fifo], {
      cwd: root,
      onSpawn: (c) => (child = c),
      timeoutMs: 20_000,
    });
    try {
      if (HAS_PROC_FD) await waitUntilOpen(child!.pid!, fifo, 8000);
      child!.kill('SIGINT');
      const r = await running;
      expect(r.code).toBe(130);
      expect(r.stdout).toBe('');
      expect(server.requests).toHaveLength(0);
    } finally {
      child?.kill('SIGKILL');
    }
  });

  it('--files-from a FIFO (`<(find …)`) is read to its end', async () => {
    const fifo = path.join(root, 'fed-list.fifo');
    mkfifo(fifo);
    const server = await serve(okHandler({ text: 'Listed.' }));
    const { createWriteStream } = await import('node:fs');
    const running = runCli(['--base-url', server.baseUrl, '--files-from', fifo], { cwd: root });
    createWriteStream(fifo).end('cat.png\n');
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('==> cat.png <==\nListed.\n');
    expect(server.requests).toHaveLength(1);
  });

  it('a FIFO given by name is read to its end (as `<(curl …)` gives one)', async () => {
    const fifo = path.join(root, 'fed.png');
    mkfifo(fifo);
    const server = await serve(okHandler({ text: 'Fed.' }));
    const { readFile } = await import('node:fs/promises');
    const { createWriteStream } = await import('node:fs');
    const running = runCli(['--base-url', server.baseUrl, fifo], { cwd: root });
    createWriteStream(fifo).end(await readFile(path.join(root, 'cat.png')));
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Fed.\n');
    expect(server.requests).toHaveLength(1);
  });

  it('a socket or a device given by name is an input error (exit 3)', async () => {
    const sock = createServer();
    await new Promise<void>((resolve) => sock.listen(path.join(root, 'sock.png'), resolve));
    try {
      const server = await serve(okHandler());
      const r = await runCli(['--base-url', server.baseUrl, 'sock.png'], { cwd: root });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/sock\.png: not a regular file/);
      const dev = await runCli(['--base-url', server.baseUrl, '/dev/null'], { cwd: root });
      expect(dev.code).toBe(3);
      expect(dev.stderr).toMatch(/\/dev\/null: not a regular file/);
      expect(server.requests).toHaveLength(0);
    } finally {
      await new Promise((resolve) => sock.close(resolve));
    }
  });
});
