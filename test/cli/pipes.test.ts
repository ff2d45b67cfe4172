/**
 * A reader that goes away (`describe-image … | head -1`) ends the run quietly: exit 130,
 * no stack trace, and in a batch a summary saying why it stopped.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { answer, serverPool } from '../helpers/server.js';

const serve = serverPool();
let dir: string;

beforeAll(async () => {
  dir = await tempDir('describe-image-pipes-');
  for (let i = 0; i < 12; i++) {
    await writeFile(
      path.join(dir, `img-${String(i).padStart(2, '0')}.png`),
      await makeImage('png', { color: `#${(i * 20).toString(16).padStart(2, '0')}4080` }),
    );
  }
});

describe('standard output closed by its reader', () => {
  it('stops a batch at once: exit 130, the reason in the summary, no stack trace', async () => {
    const server = await serve(async (req, res) => {
      await sleep(50);
      answer(req, res, { text: 'An answer long enough to need a write.' });
    });
    let closed = false;
    const r = await runCli(['--base-url', server.baseUrl, '-c', '2', '--no-stream', dir], {
      onSpawn: (child) => {
        child.stdout?.once('data', () => {
          closed = true;
          child.stdout?.destroy();
        });
      },
    });
    expect(closed).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^stopped: standard output was closed$/m);
    expect(r.stderr).not.toMatch(/Ctrl-C/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    // Not every image was sent: the run stopped instead of describing all twelve.
    expect(server.requests.length).toBeLessThan(12);
  });
});
