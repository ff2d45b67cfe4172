#!/usr/bin/env node
// describe-image benchmark: `npm run bench` (builds first). Not a test: it prints a table.
//
// A loopback server stands in for the API, answering after a configurable delay. Rows:
//  1. start-up of --version and --help, as a ratio to `node -e 0` (target ≤ 1.5×)
//  2. one small image end to end, next to the provider page's curl example (base64 + curl)
//  3. 1,000 small images at 200 ms a request, at -c 8 and -c 64: images/s as a % of the ideal
//     (concurrency ÷ 0.2 s), next to `xargs -P N` running curl on the same job (target ≥ 95 % at 64),
//     and to the same requests sent by a bare undici or node:http loop (bench/floor.mjs)
//  4. peak RSS (and rate) of a 10,000-image batch and of one 20 MB image (target ≤ 150 MiB each)
//  5. a 12-megapixel JPEG photo: bytes uploaded and preparation time on one core
//     (target ≤ 10 % of the original bytes, ≤ 80 ms)
//  6. the answer cache: one cached image end to end next to `node -e 0` (target ≤ +60 ms); a
//     10,000-image batch answered from the cache (≥ 2,000 img/s, peak RSS ≤ 150 MiB); the
//     lookup's overhead on a batch with no hits, against --no-cache (≤ 5 %); lmdb's own numbers
//  7. 10,000 small images into batch shards (`--batch-file`), in images/s next to the
//     synchronous path's preparation of the same images (`--dry-run`), and peak RSS
//  8. one 190 MB batch shard built and uploaded to the loopback batch stand-in (`--batch-api`):
//     peak RSS (target ≤ 150 MiB), next to the engine alone (bench/batch-api.mjs)
//  9. write-back (--write-metadata) over 1,000 small JPEGs at -c 8 against a server that answers
//     at once: time per photo with and without it, next to a bare undici loop sending the same
//     requests and to the writer alone (bench/metadata.mjs) with its floor, copying each file
//
// Every run gets a fresh, empty answer cache unless a row says otherwise: no row is answered
// from another's cache.
//
// Options: --quick (fewer runs and images, for a smoke test), --only=1,3 (rows to run).
import { fork, spawn, spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { batchApiRows } from './batch-api.mjs';
import { cacheRows } from './cache.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin/describe-image.js');
const FLOOR = path.join(ROOT, 'bench/cache-floor.mjs');
const LOAD_FLOOR = path.join(ROOT, 'bench/load-floor.mjs');
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const only = [...args]
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',')
  .map(Number);
const want = (row) => !only || only.includes(row);
const work = mkdtempSync(path.join(os.tmpdir(), 'describe-image-bench-'));
const rows = [];

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeRun(cmd, argv, opts = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: benchEnv(), ...opts });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

let cacheNo = 0;
function benchEnv(extra = {}) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    XDG_CACHE_HOME: path.join(work, `cache-${cacheNo++}`),
    ...extra,
  };
}

// ---- the stand-in API (bench/server.mjs, in its own process) ------------------------------

async function startServer() {
  const child = fork(fileURLToPath(new URL('server.mjs', import.meta.url)), {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
  const ask = (message) =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send(message);
    });
  const setDelay = (delayMs) => ask({ delayMs, reset: true });
  return { child, setDelay, stats: () => ask({}), base: `http://127.0.0.1:${port}/v1` };
}

// ---- inputs ------------------------------------------------------------------------------

async function smallImages(dir, count) {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const png = await sharp({
      create: {
        width: 16,
        height: 16,
        channels: 3,
        background: { r: i % 256, g: (i >> 8) % 256, b: 128 },
      },
    })
      .png()
      .toBuffer();
    writeFileSync(path.join(dir, `img-${String(i).padStart(5, '0')}.png`), png);
  }
  return dir;
}

/** A 12-megapixel photo-like JPEG (4032×3024, smooth gradients plus grain), as a phone makes. */
async function photoJpeg(file) {
  const w = 4032;
  const h = 3024;
  const raw = Buffer.alloc(w * h * 3);
  let seed = 42;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = (seed >> 16) % 24;
      const i = (y * w + x) * 3;
      raw[i] = (x * 255) / w + n;
      raw[i + 1] = (y * 255) / h + n;
      raw[i + 2] = 128 + 60 * Math.sin(x / 150) * Math.cos(y / 110) + n;
    }
  }
  await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 92 })
    .withMetadata({ orientation: 1 })
    .toFile(file);
  return file;
}

/** A JPEG just under the 20 MB limit (noise does not compress). */
async function bigJpeg(file) {
  const w = 4880;
  const h = 3650;
  const raw = Buffer.alloc(w * h * 3);
  let seed = 7;
  for (let i = 0; i < raw.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    raw[i] = seed >> 23;
  }
  await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 97 })
    .toFile(file);
  return file;
}

/** Peak RSS in MiB and wall time in seconds of one run of the CLI. */
function peakRss(argv, env) {
  const r = spawnSync('/usr/bin/time', ['-f', '%M %e', process.execPath, BIN, ...argv], {
    env: benchEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = r.stderr.toString().trim().split('\n');
  if (r.status !== 0)
    throw new Error(`peak RSS run failed (${r.status}): ${lines.slice(-3).join(' | ')}`);
  const [kib, seconds] = (lines.at(-1) ?? '').split(' ').map(Number);
  return { mib: kib / 1024, seconds };
}

function runAsync(cmd, argv, env, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, {
      env: benchEnv(env),
      stdio: ['ignore', 'ignore', 'pipe'],
      ...opts,
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) =>
      code === 0
        ? resolve(performance.now() - t0)
        : reject(new Error(`${cmd} exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

// The provider page's example with the image inlined: base64 then curl, as a shell does it.
const curlScript = (url) =>
  `IMG=$(base64 -w0 "$1"); curl -s --fail '${url}' -H 'Authorization: Bearer API_KEY' -H 'Content-Type: application/json' ` +
  `--data "{\\"model\\":\\"gpt-4o-2024-08-06\\",\\"messages\\":[{\\"role\\":\\"user\\",\\"content\\":[{\\"type\\":\\"text\\",\\"text\\":\\"What is in this image?\\"},{\\"type\\":\\"image_url\\",\\"image_url\\":{\\"url\\":\\"data:image/png;base64,$IMG\\"}}]}],\\"max_tokens\\":300}" > /dev/null`;

// ---- rows --------------------------------------------------------------------------------

const { child: server, setDelay, stats, base } = await startServer();
const env = { DESCRIBE_IMAGE_BASE_URL: base };
try {
  if (want(1)) {
    const runs = quick ? 5 : 21;
    for (let i = 0; i < 3; i++) timeRun(process.execPath, [BIN, '--version']); // warm the compile cache
    const node = median(Array.from({ length: runs }, () => timeRun(process.execPath, ['-e', '0'])));
    const version = median(
      Array.from({ length: runs }, () => timeRun(process.execPath, [BIN, '--version'])),
    );
    const help = median(
      Array.from({ length: runs }, () => timeRun(process.execPath, [BIN, '--help'])),
    );
    rows.push(['1 start-up', '`node -e 0`', `${node.toFixed(0)} ms`, '']);
    rows.push([
      '',
      '`--version`',
      `${version.toFixed(0)} ms`,
      `${(version / node).toFixed(2)}× node (target ≤ 1.5×)`,
    ]);
    rows.push([
      '',
      '`--help`',
      `${help.toFixed(0)} ms`,
      `${(help / node).toFixed(2)}× node (target ≤ 1.5×)`,
    ]);
  }

  if (want(2)) {
    const dir = await smallImages(path.join(work, 'one'), 1);
    const file = path.join(dir, 'img-00000.png');
    const runs = quick ? 5 : 15;
    await setDelay(0);
    const ours = median(
      Array.from({ length: runs }, () =>
        timeRun(process.execPath, [BIN, '-q', file], { env: benchEnv(env) }),
      ),
    );
    const curl = median(
      Array.from({ length: runs }, () =>
        timeRun('sh', ['-c', curlScript(`${base}/chat/completions`), 'sh', file]),
      ),
    );
    rows.push([
      '2 one small image',
      'describe-image',
      `${ours.toFixed(0)} ms`,
      `end to end, server answers at once`,
    ]);
    rows.push([
      '',
      'base64 + curl (provider example)',
      `${curl.toFixed(0)} ms`,
      `${(ours / curl).toFixed(2)}× curl`,
    ]);
  }

  if (want(3)) {
    const count = quick ? 200 : 1000;
    const dir = await smallImages(path.join(work, 'batch'), count);
    for (const c of [8, 64]) {
      const ideal = c / 0.2;
      await setDelay(200);
      const ms = await runAsync(process.execPath, [BIN, dir, '-c', String(c), '-q'], env);
      const rate = (count * 1000) / ms;
      // Between the first and the last request the server saw: the rate once started.
      const seen = await stats();
      const steady = (seen.requests * 1000) / (seen.last - seen.first + 200);
      rows.push([
        c === 8 ? `3 ${count} images, 200 ms each` : '',
        `describe-image -c ${c}`,
        `${rate.toFixed(1)} img/s`,
        `${((rate / ideal) * 100).toFixed(0)} % of ideal ${ideal} img/s, start-up included${c === 64 ? ' (target ≥ 95 %)' : ''}`,
      ]);
      rows.push([
        '',
        '  once started',
        `${steady.toFixed(1)} img/s`,
        `${((steady / ideal) * 100).toFixed(0)} % of ideal (first request to last answer)`,
      ]);
      // The floor: the same requests from a bare loop (bench/floor.mjs), no CLI at all.
      for (const client of ['undici', 'http']) {
        await setDelay(200);
        const floorMs = await runAsync(
          process.execPath,
          [
            fileURLToPath(new URL('floor.mjs', import.meta.url)),
            client,
            `${base}/chat/completions`,
            String(count),
            String(c),
            path.join(dir, 'img-00000.png'),
          ],
          {},
        );
        const floorSeen = await stats();
        const floorRate = (count * 1000) / floorMs;
        const floorSteady = (floorSeen.requests * 1000) / (floorSeen.last - floorSeen.first + 200);
        rows.push([
          '',
          `bare ${client === 'http' ? 'node:http' : 'undici'} loop, ${c} at a time`,
          `${floorRate.toFixed(1)} img/s`,
          `${((floorRate / ideal) * 100).toFixed(0)} % of ideal, start-up included; ${((floorSteady / ideal) * 100).toFixed(0)} % once started`,
        ]);
      }
      const list = path.join(work, 'list.txt');
      writeFileSync(
        list,
        Array.from({ length: count }, (_, i) =>
          path.join(dir, `img-${String(i).padStart(5, '0')}.png`),
        ).join('\n'),
      );
      const xargsMs = await runAsync(
        'sh',
        [
          '-c',
          `xargs -P ${c} -n 1 sh -c '${curlScript(`${base}/chat/completions`).replaceAll("'", "'\\''")}' sh < ${list}`,
        ],
        {},
      );
      const xrate = (count * 1000) / xargsMs;
      rows.push([
        '',
        `xargs -P ${c} curl`,
        `${xrate.toFixed(1)} img/s`,
        `${((xrate / ideal) * 100).toFixed(0)} % of ideal`,
      ]);
    }
  }

  if (want(4)) {
    const count = quick ? 2000 : 10000;
    const dir = await smallImages(path.join(work, 'many'), count);
    await setDelay(5);
    const many = peakRss(
      [dir, '-c', '16', '-q', '--json', '-o', path.join(work, 'many.jsonl')],
      env,
    );
    rows.push([
      '4 peak RSS',
      `${count.toLocaleString('en-US')}-image batch`,
      `${many.mib.toFixed(0)} MiB`,
      `target ≤ 150 MiB (-c 16, server at 5 ms: ${(count / many.seconds).toFixed(0)} img/s)`,
    ]);
    const big = await bigJpeg(path.join(work, 'big.jpg'));
    const mb = (statSync(big).size / 1048576).toFixed(1);
    const original = peakRss([big, '-q', '--original'], env);
    rows.push([
      '',
      `one ${mb} MB JPEG, --original`,
      `${original.mib.toFixed(0)} MiB`,
      'target ≤ 150 MiB (body streamed)',
    ]);
    const prepared = peakRss([big, '-q'], env);
    rows.push([
      '',
      `one ${mb} MB JPEG, prepared`,
      `${prepared.mib.toFixed(0)} MiB`,
      'decoded and scaled by sharp',
    ]);
  }

  if (want(5)) {
    const photo = await photoJpeg(path.join(work, 'photo.jpg'));
    const size = statSync(photo).size;
    // Eight copies in a folder: --dry-run prepares them one after another and prints each
    // one's preparation time ("… (93 % smaller, 61 ms)"); the first also pays for loading.
    const dir = path.join(work, 'photos');
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 8; i++) linkSync(photo, path.join(dir, `photo-${i}.jpg`));
    const r = spawnSync('taskset', ['-c', '0', process.execPath, BIN, dir, '--dry-run'], {
      env: benchEnv(env),
      encoding: 'utf8',
    });
    const lines = [...r.stderr.matchAll(/→ \S+ [\d,]+×[\d,]+ .*?\((-?\d+) % smaller, (\d+) ms\)/g)];
    if (lines.length !== 8) throw new Error(`expected 8 preparation lines in: ${r.stderr}`);
    const times = lines.map((m) => Number(m[2]));
    const sent = [...r.stdout.matchAll(/…\(([\d,]+) bytes\)/g)].map((m) =>
      Number(m[1].replaceAll(',', '')),
    );
    rows.push([
      '5 12-MP JPEG photo',
      `${(size / 1048576).toFixed(1)} MB, 4032×3024`,
      `${(sent[0] / 1024).toFixed(0)} KB sent (${((sent[0] / size) * 100).toFixed(1)} %)`,
      'target ≤ 10 % of the original',
    ]);
    rows.push([
      '',
      'preparation, one core',
      `${median(times.slice(1))} ms`,
      'target ≤ 80 ms (median of 7 in a batch, taskset -c 0)',
    ]);
    rows.push(['', '  the first, in a fresh process', `${times[0]} ms`, 'libvips warming up']);
  }

  if (want(6)) {
    // One cached image: the cache filled by a first run, then the same run timed, each
    // measurement next to `node -e 0`, next to the least any lmdb cache can do for a hit
    // (bench/cache-floor.mjs: load lmdb, open, hash the image, look it up, print), next to the
    // same after parsing the run's options with the CLI's own parser (the options decide the
    // key), and next to loading the run's own code and running none of it
    // (bench/load-floor.mjs), taken in the same round (the machine drifts).
    const dir = await smallImages(path.join(work, 'cached-one'), 1);
    const file = path.join(dir, 'img-00000.png');
    const cached = { ...env, XDG_CACHE_HOME: path.join(work, 'cache-one') };
    const floorDir = path.join(work, 'cache-floor');
    mkdirSync(floorDir, { recursive: true });
    await setDelay(0);
    timeRun(process.execPath, [BIN, '-q', file], { env: benchEnv(cached) });
    timeRun(process.execPath, [FLOOR, 'hit', floorDir, file]);
    timeRun(process.execPath, [FLOOR, 'parsed', floorDir, file]);
    const runs = quick ? 7 : 21;
    const rounds = Array.from({ length: runs }, () => {
      const node = timeRun(process.execPath, ['-e', '0']);
      const floor = timeRun(process.execPath, [FLOOR, 'hit', floorDir, file]);
      const parsed = timeRun(process.execPath, [FLOOR, 'parsed', floorDir, file]);
      const load = timeRun(process.execPath, [LOAD_FLOOR]);
      const hit = timeRun(process.execPath, [BIN, '-q', file], { env: benchEnv(cached) });
      return { node, floor, parsed, load, hit };
    });
    const node = median(rounds.map((r) => r.node));
    const hit = median(rounds.map((r) => r.hit));
    const over = median(rounds.map((r) => r.hit - r.node));
    const floorOver = median(rounds.map((r) => r.floor - r.node));
    const parsedOver = median(rounds.map((r) => r.parsed - r.node));
    const loadOver = median(rounds.map((r) => r.load - r.node));
    rows.push(['6 answer cache', '`node -e 0`', `${node.toFixed(0)} ms`, '']);
    rows.push([
      '',
      'one cached image, end to end',
      `${hit.toFixed(0)} ms`,
      `node -e 0 + ${over.toFixed(0)} ms (target ≤ + 60 ms; median of ${runs} rounds)`,
    ]);
    rows.push([
      '',
      '  floor: lmdb alone, a hit',
      `node -e 0 + ${floorOver.toFixed(0)} ms`,
      'load lmdb, open, hash, look up, print (bench/cache-floor.mjs)',
    ]);
    rows.push([
      '',
      "  the same, after parsing the run's options",
      `node -e 0 + ${parsedOver.toFixed(0)} ms`,
      'src/cli.ts built (commander, the options, their checks), none of the run (cache-floor.mjs parsed)',
    ]);
    rows.push([
      '',
      "  the run's own code loaded, none of it run",
      `node -e 0 + ${loadOver.toFixed(0)} ms`,
      'the chunks a describe run imports first, with theirs (bench/load-floor.mjs)',
    ]);

    // A batch every image of which is in the cache: its rate and peak memory.
    const count = quick ? 2000 : 10000;
    const many = await smallImages(path.join(work, 'cached-many'), count);
    const manyEnv = { ...env, XDG_CACHE_HOME: path.join(work, 'cache-many') };
    await setDelay(5);
    peakRss([many, '-c', '16', '-q', '--json', '-o', path.join(work, 'fill.jsonl')], manyEnv);
    const all = peakRss(
      [many, '-c', '16', '-q', '--json', '-o', path.join(work, 'hits.jsonl')],
      manyEnv,
    );
    rows.push([
      '',
      `${count.toLocaleString('en-US')} images, all cached`,
      `${(count / all.seconds).toFixed(0)} img/s`,
      `target ≥ 2,000 img/s; peak RSS ${all.mib.toFixed(0)} MiB (target ≤ 150)`,
    ]);

    // No hits: the lookups' cost, against the same batch with --no-cache (alternated, each run
    // with a fresh cache), next to the least storing that many answers costs a fresh process
    // (bench/cache-floor.mjs fill, over `node -e 0`). Once against a server that answers at
    // once (all CPU: the worst case), once against one that takes 50 ms.
    const missCount = quick ? 300 : 1000;
    const misses = await smallImages(path.join(work, 'misses'), missCount);
    const missRounds = quick ? 3 : 7;
    for (const delay of [0, 50]) {
      await setDelay(delay);
      const withCache = [];
      const without = [];
      const fills = [];
      for (let i = 0; i < missRounds; i++) {
        without.push(
          timeRun(process.execPath, [BIN, misses, '-c', '16', '-q', '--no-cache'], {
            env: benchEnv(env),
          }),
        );
        withCache.push(
          timeRun(process.execPath, [BIN, misses, '-c', '16', '-q'], { env: benchEnv(env) }),
        );
        if (delay === 0) {
          const fillDir = mkdtempSync(path.join(work, 'fill-'));
          const nodeMs = timeRun(process.execPath, ['-e', '0']);
          fills.push(
            timeRun(process.execPath, [FLOOR, 'fill', fillDir, String(missCount)]) - nodeMs,
          );
        }
      }
      const a = median(withCache);
      const b = median(without);
      const floorNote =
        delay === 0
          ? `; floor: lmdb loaded, opened and ${missCount.toLocaleString('en-US')} answers stored, +${median(fills).toFixed(0)} ms`
          : '';
      rows.push([
        '',
        `${missCount.toLocaleString('en-US')} images, no hits, server ${delay} ms`,
        `${a.toFixed(0)} ms`,
        `${(((a - b) / b) * 100).toFixed(1)} % over --no-cache (${b.toFixed(0)} ms; target ≤ 5 %)${floorNote}`,
      ]);
    }
    rows.push(...(await cacheRows({ quick, label: '' })));
  }

  if (want(7) || want(8)) rows.push(...(await batchApiRows({ work, quick, smallImages })));
  if (want(9)) {
    const count = quick ? 100 : 1000;
    const { benchWriteBack, smallJpegs } = await import('./metadata.mjs');
    // Two folders of the same photos: one described, one described and written into.
    const plainDir = path.join(work, 'wb-plain');
    const writeDir = path.join(work, 'wb-write');
    await smallJpegs(plainDir, count);
    await smallJpegs(writeDir, count);
    // A fresh answer cache for each run: no answer of one run is another's hit.
    const fresh = (name) => ({ ...env, XDG_CACHE_HOME: path.join(work, `cache-${name}`) });
    await setDelay(0);
    const plainMs = await runAsync(
      process.execPath,
      [BIN, plainDir, '-c', '8', '-q'],
      fresh('plain'),
    );
    const writeMs = await runAsync(
      process.execPath,
      [BIN, writeDir, '-c', '8', '-q', '--write-metadata'],
      fresh('write'),
    );
    const floorMs = await runAsync(
      process.execPath,
      [
        fileURLToPath(new URL('floor.mjs', import.meta.url)),
        'undici',
        `${base}/chat/completions`,
        String(count),
        '8',
        path.join(plainDir, 'p00000.jpg'),
      ],
      {},
    );
    const alone = await benchWriteBack({ work, count });
    const per = (ms) => ms / count;
    rows.push([
      `9 write-back, ${count.toLocaleString('en-US')} small JPEGs`,
      'describe-image -c 8, server answers at once',
      `${per(plainMs).toFixed(2)} ms a photo`,
      `bare undici loop, same requests: ${per(floorMs).toFixed(2)} ms (start-up included in both)`,
    ]);
    rows.push([
      '',
      '  the same with --write-metadata',
      `${per(writeMs).toFixed(2)} ms a photo`,
      `${(writeMs / plainMs).toFixed(2)}× without; write-back adds ${per(writeMs - plainMs).toFixed(2)} ms a photo`,
    ]);
    rows.push([
      '',
      '  the writer alone, 8 at a time',
      `${alone.perPhotoMs.toFixed(2)} ms a photo`,
      `copying each file: ${alone.copyMs.toFixed(2)} ms; ExifTool start ${alone.startMs.toFixed(0)} ms, end ${alone.closeMs.toFixed(0)} ms`,
    ]);
    rows.push([
      '',
      '  against row 3 (200 ms a request)',
      `${(25 / per(writeMs)).toFixed(1)}× headroom`,
      '-c 8 at 200 ms a request is 25 ms an image; the CLI writing back, with an instant server, takes the time above',
    ]);
    // And measured so: is write-back the bottleneck at -c 8 against a server as slow as row 3's?
    await smallJpegs(path.join(work, 'wb-plain-200'), count);
    await smallJpegs(path.join(work, 'wb-write-200'), count);
    await setDelay(200);
    const slowPlain = await runAsync(
      process.execPath,
      [BIN, path.join(work, 'wb-plain-200'), '-c', '8', '-q'],
      fresh('plain-200'),
    );
    const slowWrite = await runAsync(
      process.execPath,
      [BIN, path.join(work, 'wb-write-200'), '-c', '8', '-q', '--write-metadata'],
      fresh('write-200'),
    );
    const rate = (ms) => (count * 1000) / ms;
    rows.push([
      '',
      '  -c 8, 200 ms a request',
      `${rate(slowWrite).toFixed(1)} img/s`,
      `with --write-metadata; ${rate(slowPlain).toFixed(1)} img/s without (ideal 40, start-up included)`,
    ]);
  }
} finally {
  server.disconnect();
  rmSync(work, { recursive: true, force: true });
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), 4));
const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log(
  `describe-image bench · node ${process.version} · ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`,
);
console.log(line(['row', 'what', 'result', 'note']));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
