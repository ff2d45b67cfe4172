/**
 * One image on a terminal, run in-process (`run(argv, deps)` with fake streams that say
 * isTTY): the answer streamed to the terminal loses its control sequences, and the spinner and
 * messages on stderr carry none from the server either.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, tempDir } from '../helpers/images.js';
import { runInProcess } from '../helpers/in-process.js';
import { okHandler, startServer, type TestServer } from '../helpers/server.js';

const EVIL_ANSWER = 'A cat \x1b[31mon\x1b[0m a mat.\x1b]52;c;cHduZWQ=\x07\u009b2J';

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startServer(okHandler({ text: EVIL_ANSWER }));
  dir = await tempDir();
  await writeFile(path.join(dir, 'cat.png'), await makeImage('png', { width: 20, height: 10 }));
});

afterAll(async () => {
  await server.close();
});

function runOn(terminal: boolean, argv: string[]) {
  return runInProcess(argv, {
    cwd: dir,
    terminal,
    columns: 120,
    env: {
      DESCRIBE_IMAGE_BASE_URL: server.baseUrl,
      DESCRIBE_IMAGE_API_KEY: 'sk-test-single',
      NO_COLOR: '1',
    },
  });
}

describe('one image', () => {
  it('on a terminal, the streamed answer reaches it without control sequences', async () => {
    const r = await runOn(true, ['cat.png']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat on a mat.\n');
  });

  it('the same with --no-stream', async () => {
    const r = await runOn(true, ['--no-stream', 'cat.png']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat on a mat.\n');
  });

  it('in a pipe, the answer is byte for byte', async () => {
    const r = await runOn(false, ['cat.png']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${EVIL_ANSWER}\n`);
  });
});
