/**
 * Stopping a write-back batch of 50 photos, end to end: the built CLI (in its own process
 * group, as a terminal runs it) writes captions into photos whose answers come from a slow
 * loopback server, and is stopped midway as a user or the system stops it. After it ends:
 * every photo is either fully updated or byte for byte what it was, nothing is left beside
 * them (no `_exiftool_tmp`, no `_original`), and no process of its group (ExifTool's Perl
 * included) is still running.
 *
 * - Ctrl-C at a terminal: SIGINT to the whole group, so ExifTool gets it too (the writer
 *   carries on with a new one during the grace period, then ends it).
 * - Ctrl-C twice (to the CLI alone): the second quits at once; main.ts's `exit` handler
 *   sends ExifTool SIGINT. Without it, Perl is orphaned.
 * - SIGTERM, SIGHUP (a closed terminal): the run stops as for Ctrl-C. Without main.ts's
 *   SIGHUP handler, Node dies at once and Perl is orphaned.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExifTool } from 'exiftool-vendored';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/images.js';
import { listing, pixels, readBack, referenceExifTool, TRICKY } from '../helpers/metadata.js';
import { noise } from '../helpers/pixels.js';
import { answer, serverPool } from '../helpers/server.js';

const serve = serverPool();
const COUNT = 50;

let root: string;
let et: ExifTool;
const groups: number[] = [];

beforeAll(async () => {
  root = await tempDir('describe-image-cli-wb-stop-');
  et = referenceExifTool();
});

afterEach(() => {
  // Whatever a failed test left running goes (the test has already failed on it).
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Nothing left.
    }
  }
});

afterAll(async () => {
  await et.end();
  await rm(root, { recursive: true, force: true });
});

/** The processes still in a process group, as `pgrep -g` lists them (pid and command). */
function groupMembers(pgid: number): string[] {
  const r = spawnSync('pgrep', ['-a', '-g', String(pgid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** Waits (up to 10 s) until the group is empty; what is left. */
async function leftInGroup(pgid: number): Promise<string[]> {
  for (let i = 0; i < 100 && groupMembers(pgid).length > 0; i++) await sleep(100);
  return groupMembers(pgid);
}

type Stop = 'terminal' | 'twice' | 'SIGTERM' | 'SIGHUP';

/** Answers held back by the server ('terminal', 'twice') until `stop()` releases them. */
const held: (() => void)[] = [];

async function stop(child: ChildProcess, how: Stop): Promise<void> {
  const pid = child.pid!;
  switch (how) {
    case 'terminal':
      process.kill(-pid, 'SIGINT');
      // ExifTool has ended; the answers still in flight come, and their photos are written
      // by a new one (the run must not end before they are: it once did, exit code 13).
      await sleep(400);
      for (const release of held.splice(0)) release();
      return;
    case 'twice':
      process.kill(pid, 'SIGINT');
      // During the grace period: one held answer comes, and while its photo is being written
      // (the other held one keeps the run waiting), the second Ctrl-C.
      await sleep(400);
      held.shift()?.();
      await sleep(20);
      process.kill(pid, 'SIGINT');
      return;
    case 'SIGTERM':
    case 'SIGHUP':
      process.kill(pid, how);
      return;
  }
}

describe.each(['terminal', 'twice', 'SIGTERM', 'SIGHUP'] as const)(
  'stopped (%s) during a write-back batch of 50 photos',
  (how) => {
    it('leaves each photo fully updated or untouched, nothing beside them, no process behind', async () => {
      const dir = path.join(root, how);
      await mkdir(dir);
      const originals = new Map<string, Buffer>();
      const decoded = new Map<string, Buffer>();
      for (let i = 0; i < COUNT; i++) {
        const file = path.join(dir, `p${String(i).padStart(2, '0')}.jpg`);
        // Big enough that a write takes a while, so a signal is likely to land inside one.
        await noise(256, 256).jpeg({ quality: 95 }).toFile(file);
        originals.set(file, await readFile(file));
        decoded.set(file, await pixels(file));
      }
      let midway: () => void = () => undefined;
      const reachedMidway = new Promise<void>((resolve) => (midway = resolve));
      held.length = 0;
      const server = await serve(async (req, res) => {
        const nth = server.requests.length;
        if (nth === 16) midway();
        if ((how === 'twice' || how === 'terminal') && nth >= 15)
          await new Promise<void>((r) => held.push(r));
        else await sleep(150);
        answer(req, res, { text: JSON.stringify({ caption: TRICKY }) });
      });

      let child: ChildProcess | undefined;
      const run = runCli(['.', '--preset', 'caption', '--write-metadata', '-c', '4'], {
        cwd: dir,
        env: { DESCRIBE_IMAGE_BASE_URL: server.baseUrl },
        detached: true,
        timeoutMs: 60_000,
        onSpawn: (c) => {
          child = c;
          groups.push(c.pid!);
        },
      });
      await Promise.race([reachedMidway, run]);
      await stop(child!, how);
      const result = await run;
      expect(result.code, result.stderr).toBe(130);

      expect(await leftInGroup(child!.pid!)).toEqual([]);
      expect(await listing(dir)).toEqual([...originals.keys()].map((f) => path.basename(f)));
      let updated = 0;
      for (const [file, original] of originals) {
        if ((await readFile(file)).equals(original)) continue;
        updated++;
        expect((await readBack(et, file))['XMP-dc:Description'], file).toBe(TRICKY);
        expect((await pixels(file)).equals(decoded.get(file)!), file).toBe(true);
      }
      // Stopped midway: some photos were written, and not all.
      expect(updated).toBeGreaterThan(0);
      expect(updated).toBeLessThan(COUNT);
    });
  },
);
