// Batch-engine rows for `npm run bench` (bench/run.mjs calls batchApiRows), or on their own:
// `node bench/batch-api.mjs [--quick]` (after `node scripts/build.mjs`).
//
//  7. 10,000 small images into shards: `describe-image DIR --batch-file` (read, prepare, key,
//     write shard and map) in images/s and peak RSS, next to the floor from the same run: the
//     synchronous path's preparation of the same images (`describe-image DIR --dry-run`: read,
//     prepare, build and print each body, nothing sent)
//  8. one 190 MB shard: `describe-image DIR --batch-api` building it from 1.4 MB JPEGs and
//     uploading it to the loopback stand-in, peak RSS (target ≤ 150 MiB), next to the floor from
//     the same run: the engine alone (bench/batch-api-driver.ts `shard`: the same size of lines
//     built and uploaded, no CLI, no images to read or prepare)
//
// Each CLI run is a process of its own under /usr/bin/time, with fresh state and cache folders.
// The stand-in runs in its own process (the driver's `serve` mode).
import { fork, spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin/describe-image.js');
const KEY = 'sk-bench';

// Bundled into test/helpers/ (removed afterwards): its bare imports resolve from the
// repository's node_modules, and the stand-in finds its schemas at ../fixtures/ as it does there.
async function bundleDriver() {
  const outfile = path.join(ROOT, 'test', 'helpers', `.bench-batch-api-driver-${process.pid}.mjs`);
  await build({
    absWorkingDir: ROOT,
    entryPoints: ['bench/batch-api-driver.ts'],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}

/** Runs a command under /usr/bin/time: its stdout, stderr, peak RSS (MiB) and wall time (s). */
function timed(argv, env, work) {
  const home = mkdtempSync(path.join(work, 'home-'));
  const r = spawnSync('/usr/bin/time', ['-f', '%M %e', ...argv], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
      XDG_STATE_HOME: path.join(home, 'state'),
      XDG_CACHE_HOME: path.join(home, 'cache'),
      ...env,
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = r.stderr.trim().split('\n');
  if (r.status !== 0)
    throw new Error(
      `${argv.slice(0, 4).join(' ')} failed (${r.status}): ${lines.slice(-5).join('\n')}`,
    );
  const [kib, seconds] = (lines.at(-1) ?? '').split(' ').map(Number);
  return { stdout: r.stdout, stderr: r.stderr, mib: kib / 1024, seconds };
}

const cli = (args, env, work) => timed([process.execPath, BIN, ...args], env, work);

async function startStandIn(driver) {
  const child = fork(driver, ['serve'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { baseUrl } = await new Promise((resolve) => child.once('message', resolve));
  return { child, baseUrl };
}

/** Hard links to eight distinct noise JPEGs (noise does not compress), about `target` bytes in base64. */
async function largeImages(dir, target) {
  const { default: sharp } = await import('sharp');
  mkdirSync(dir, { recursive: true });
  const sources = [];
  for (let k = 0; k < 8; k++) {
    // Short side ≤ 768: sent as it is (no scaling), 1.4 MB each.
    const w = 1800;
    const h = 760;
    const raw = Buffer.alloc(w * h * 3);
    let seed = 11 + k;
    for (let i = 0; i < raw.length; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      raw[i] = seed >> 23;
    }
    const file = path.join(dir, `source-${k}.jpg`);
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 95 })
      .toFile(file);
    sources.push(file);
  }
  const bytes = statSync(sources[0]).size;
  const count = Math.floor(target / ((bytes * 4) / 3 + 400));
  const images = path.join(dir, 'images');
  mkdirSync(images);
  for (let i = 0; i < count; i++)
    linkSync(
      sources[i % sources.length],
      path.join(images, `photo-${String(i).padStart(4, '0')}.jpg`),
    );
  return { images, bytes };
}

/**
 * The rows, as [row, what, result, note]. `smallImages(dir, count)` writes the small PNGs
 * (bench/run.mjs has one); `work` is a scratch folder.
 */
export async function batchApiRows({ work, quick = false, smallImages }) {
  const rows = [];
  const dir = mkdtempSync(path.join(work, 'batch-api-'));
  const driver = await bundleDriver();
  try {
    const count = quick ? 2000 : 10000;
    const images = await smallImages(path.join(dir, 'small'), count);
    // A first pass warms the page cache and sharp; it is not counted.
    cli([images, '--dry-run', '-m', 'gpt-4o-mini'], {}, dir);
    const sync = cli([images, '--dry-run', '-m', 'gpt-4o-mini'], {}, dir);
    const requests = path.join(dir, 'requests.jsonl');
    const shards = cli([images, '--batch-file', requests, '-m', 'gpt-4o-mini'], {}, dir);
    const written = [...shards.stderr.matchAll(/wrote ([\d,]+) request\(s\) to .* \(([\d.]+) MB/g)];
    const mb = written.reduce((sum, m) => sum + Number(m[2]), 0);
    const syncRate = count / sync.seconds;
    const rate = count / shards.seconds;
    rows.push([
      `7 ${count.toLocaleString('en-US')} images into shards`,
      '`--batch-file`: shards + map',
      `${rate.toFixed(0)} img/s`,
      `${((rate / syncRate) * 100).toFixed(0)} % of the synchronous rate; ${written.length} shard(s), ${mb.toFixed(1)} MB; peak RSS ${shards.mib.toFixed(0)} MiB`,
    ]);
    rows.push([
      '',
      'floor: `--dry-run` (synchronous preparation)',
      `${syncRate.toFixed(0)} img/s`,
      `read, prepare, build and print each body, nothing sent; peak RSS ${sync.mib.toFixed(0)} MiB`,
    ]);

    const { child, baseUrl } = await startStandIn(driver);
    try {
      const target = quick ? 50_000_000 : 190_000_000;
      const { images: big, bytes } = await largeImages(path.join(dir, 'large'), target);
      const env = { DESCRIBE_IMAGE_BASE_URL: baseUrl, DESCRIBE_IMAGE_API_KEY: KEY };
      const submitted = cli([big, '--batch-api', '-m', 'gpt-4o-mini'], env, dir);
      const shard = /batch 1 of 1 submitted: (\S+) \(([\d,]+) requests, ([\d.]+) MB\)/.exec(
        submitted.stderr,
      );
      if (!shard) throw new Error(`no single shard in: ${submitted.stderr.slice(-500)}`);
      const floor = timed(
        [
          process.execPath,
          driver,
          'shard',
          String(Number(shard[3]) * 1e6),
          path.join(dir, 'state'),
          baseUrl,
        ],
        {},
        dir,
      );
      const report = JSON.parse(floor.stdout.trim().split('\n').at(-1));
      rows.push([
        `8 one ${Number(shard[3]).toFixed(0)} MB shard`,
        '`--batch-api`: built, uploaded, created',
        `${submitted.mib.toFixed(0)} MiB peak RSS`,
        `target ≤ 150 MiB; ${shard[2]} JPEGs of ${(bytes / 1e6).toFixed(1)} MB read and prepared, ${submitted.seconds.toFixed(1)} s in all`,
      ]);
      rows.push([
        '',
        'floor: the engine alone',
        `${floor.mib.toFixed(0)} MiB peak RSS`,
        `${(report.bytes / 1e6).toFixed(0)} MB of lines built and uploaded, no CLI, no images read; ${report.seconds.toFixed(1)} s`,
      ]);
    } finally {
      child.disconnect();
    }
  } finally {
    rmSync(driver, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

// On its own: small PNGs made with sharp, and the rows printed.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { default: sharp } = await import('sharp');
  const smallImages = async (dir, count) => {
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < count; i++) {
      const background = { r: i % 256, g: (i >> 8) % 256, b: 128 };
      const png = await sharp({ create: { width: 16, height: 16, channels: 3, background } })
        .png()
        .toBuffer();
      writeFileSync(path.join(dir, `img-${String(i).padStart(5, '0')}.png`), png);
    }
    return dir;
  };
  const work = mkdtempSync(path.join(os.tmpdir(), 'describe-image-bench-batch-'));
  try {
    const rows = await batchApiRows({ work, quick: process.argv.includes('--quick'), smallImages });
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
