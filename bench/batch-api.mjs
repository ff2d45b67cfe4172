// Batch-engine rows for `npm run bench` (bench/run.mjs calls batchApiRows), or on their own:
// `node bench/batch-api.mjs [--quick]`.
//
//  6. 10,000 small images prepared into shards: images/s next to the synchronous path's
//     preparation of the same images (read, prepare, encode the body), and peak RSS
//  7. one 190 MB shard built and uploaded to the loopback stand-in (then its batch created):
//     peak RSS (target ≤ 150 MiB)
//
// Until the CLI drives the batch engines, each measurement runs bench/batch-api-driver.ts
// (bundled here with esbuild) in its own process under /usr/bin/time.
import { fork, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

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

/** Runs the driver once under /usr/bin/time: its JSON report, peak RSS (MiB) and wall time. */
function measure(driver, args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%M %e', process.execPath, driver, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const lines = r.stderr.trim().split('\n');
  if (r.status !== 0)
    throw new Error(`driver ${args[0]} failed (${r.status}): ${lines.slice(-25).join('\n')}`);
  const [kib, seconds] = (lines.at(-1) ?? '').split(' ').map(Number);
  return { report: JSON.parse(r.stdout.trim().split('\n').at(-1)), mib: kib / 1024, seconds };
}

async function startStandIn(driver) {
  const child = fork(driver, ['serve'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { baseUrl } = await new Promise((resolve) => child.once('message', resolve));
  return { child, baseUrl };
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
    const out = path.join(dir, 'shards');
    mkdirSync(out);
    // A first pass warms the page cache and sharp; it is not counted.
    measure(driver, ['prepare', images, out, 'SYNC']);
    const sync = measure(driver, ['prepare', images, out, 'SYNC']);
    const batch = measure(driver, ['prepare', images, out, 'BATCH']);
    const syncRate = count / sync.report.seconds;
    const batchRate = count / batch.report.seconds;
    rows.push([
      `6 ${count.toLocaleString('en-US')} images into shards`,
      'synchronous preparation',
      `${syncRate.toFixed(0)} img/s`,
      `read, prepare, encode each body (peak RSS ${sync.mib.toFixed(0)} MiB)`,
    ]);
    rows.push([
      '',
      'batch shards + map',
      `${batchRate.toFixed(0)} img/s`,
      `${((batchRate / syncRate) * 100).toFixed(0)} % of synchronous; ${batch.report.shards} shard(s), ${(batch.report.bytes / 1e6).toFixed(1)} MB; peak RSS ${batch.mib.toFixed(0)} MiB`,
    ]);

    const { child, baseUrl } = await startStandIn(driver);
    try {
      const target = quick ? 50_000_000 : 190_000_000;
      const big = measure(driver, ['shard', String(target), path.join(dir, 'state'), baseUrl]);
      rows.push([
        `7 one ${(big.report.bytes / 1e6).toFixed(0)} MB shard`,
        'built, uploaded to the stand-in, batch created',
        `${big.mib.toFixed(0)} MiB peak RSS`,
        `target ≤ 150 MiB; ${big.report.requests} requests, built in ${big.report.buildSeconds.toFixed(1)} s, ${big.report.seconds.toFixed(1)} s in all (batch ${big.report.batch})`,
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
