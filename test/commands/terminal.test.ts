/**
 * A batch whose stdout and stderr are a terminal, run in-process (`run(argv, deps)` with fake
 * streams that say isTTY): file names show their control characters escaped and answers lose theirs on the way to
 * the terminal, and the progress line gets its total from the count that runs beside the batch.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, tempDir } from '../helpers/images.js';
import { runInProcess } from '../helpers/in-process.js';
import { okHandler, startServer, type TestServer } from '../helpers/server.js';

const EVIL_NAME = 'evil\x1b]0;owned\x07\x1b[2J.png';
const EVIL_ANSWER = 'A cat \x1b[31mon\x1b[0m a mat.\x1b]52;c;cHduZWQ=\x07';

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startServer(okHandler({ text: EVIL_ANSWER }));
  dir = await tempDir();
  await writeFile(path.join(dir, EVIL_NAME), await makeImage('png', { width: 20, height: 10 }));
  await writeFile(path.join(dir, 'plain.png'), await makeImage('png', { width: 30, height: 10 }));
});

afterAll(async () => {
  await server.close();
});

function runOnTerminal(argv: string[]) {
  return runInProcess(argv, {
    cwd: dir,
    terminal: true,
    env: {
      DESCRIBE_IMAGE_BASE_URL: server.baseUrl,
      DESCRIBE_IMAGE_API_KEY: 'sk-test-terminal',
      NO_COLOR: '1',
    },
  });
}

describe('a batch on a terminal', () => {
  it('file names and answers reach the terminal without their control sequences', async () => {
    const r = await runOnTerminal(['.', 'What is this?']);
    expect(r.code).toBe(0);
    // The name's control characters are shown, escaped; the answer's are removed.
    expect(r.stdout).toBe(
      '==> evil\\x1b]0;owned\\x07\\x1b[2J.png <==\nA cat on a mat.\n\n==> plain.png <==\nA cat on a mat.\n',
    );
    expect(r.stdout).not.toContain('\x1b');
    expect(r.stderr).not.toContain('owned');
    expect(r.stderr).toContain('2 succeeded');
  });

  it('the progress line shows the total once counted', async () => {
    // Answers take a moment, so the line is drawn after the count has arrived.
    server.handle(async (req, res, raw) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      await okHandler()(req, res, raw);
    });
    const r = await runOnTerminal(['.', '-c', '1']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\r1\/2 · [\d,]+ tokens · [\d.]+ img\/s · ETA /);
    expect(r.stderr).not.toMatch(/\/\d+\+/);
  });
});
