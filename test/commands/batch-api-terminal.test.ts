/**
 * Waiting for a batch job on a terminal, run in-process with streams that say isTTY: the
 * progress line is drawn in place (no newline) and cleared before the summary.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeImage } from '../helpers/images.js';
import { runInProcess } from '../helpers/in-process.js';
import { fixtures, KEY } from '../batch-api/helpers.js';

const { tempDir, server: standIn } = fixtures();

describe('a batch job on a terminal', () => {
  it('shows the progress line in place while waiting, and clears it before the results', async () => {
    const server = await standIn();
    const dir = tempDir();
    for (const name of ['a.png', 'b.png'])
      await writeFile(
        path.join(dir, name),
        await makeImage('png', {
          width: 16,
          height: 16,
          color: name === 'a.png' ? '#102030' : '#302010',
        }),
      );
    const env = {
      DESCRIBE_IMAGE_BASE_URL: server.baseUrl,
      DESCRIBE_IMAGE_API_KEY: KEY,
      XDG_STATE_HOME: tempDir(),
      NO_COLOR: '1',
    };
    const submitted = await runInProcess(['.', '--batch-api'], { cwd: dir, env, terminal: true });
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();
    server.finish();
    const r = await runInProcess(['--job', id, '--wait'], { cwd: dir, env, terminal: true });
    expect(r.code, r.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex -- the escape sequences are the point
    const drawn = /\r(completed · 2\/2 done · 1\/1 batch finished · [^\r\n]*)\x1b\[K/.exec(
      r.stderr,
    );
    expect(drawn, JSON.stringify(r.stderr)).not.toBeNull();
    // Cleared before anything else is written; never left on a line of its own.
    // eslint-disable-next-line no-control-regex -- the escape sequences are the point
    expect(r.stderr).toMatch(/\x1b\[K\r\x1b\[Ksummary: 2 succeeded/);
    expect(r.stderr).not.toMatch(`job ${id}: completed`);
    expect(r.stdout).toMatch(/^==> a\.png <==\nanswer to /);
  });
});
