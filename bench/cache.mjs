#!/usr/bin/env node
// The answer cache's own numbers (src/cache/store.ts), next to their floors: 10,000 puts and
// lookups against a plain Map, and the cost of importing lmdb against `node -e 0`. Not a test:
// it prints rows. `node bench/cache.mjs [--quick]` alone, or `cacheRows()` from bench/run.mjs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Wall time of a fresh node process running `argv`, from the project folder. */
function timeNode(argv) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${argv.join(' ')} failed: ${r.stderr}`);
  return ms;
}

/** src/cache/store.ts bundled where its `import('lmdb')` finds the project's node_modules. */
async function loadStore() {
  const parent = path.join(ROOT, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(path.join(parent, 'describe-image-bench-cache-'));
  const outfile = path.join(dir, 'store.mjs');
  await build({
    entryPoints: [path.join(ROOT, 'src/cache/store.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    external: ['lmdb'],
    logLevel: 'warning',
  });
  return { store: await import(pathToFileURL(outfile).href), dir };
}

function entryOf(i) {
  return {
    answer: { kind: 'text', text: `Answer ${i}. ${'A ginger cat on a blue sofa. '.repeat(18)}` },
    model: 'gpt-4o-2024-08-06',
    id: `chatcmpl-${i}`,
    finishReason: 'stop',
    usage: { prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339 },
    askedAt: Date.now(),
  };
}

const perOp = (ms, n) => `${((ms / n) * 1000).toFixed(1)} µs/op`;

/** Rows for bench/run.mjs's table: [row, what, result, note]. */
export async function cacheRows({ quick = false, label = '6 answer cache' } = {}) {
  const count = quick ? 2_000 : 10_000;
  const runs = quick ? 5 : 15;
  const rows = [];
  const { store, dir: bundleDir } = await loadStore();
  const work = mkdtempSync(path.join(os.tmpdir(), 'describe-image-bench-cache-'));
  try {
    const keys = Array.from({ length: count }, (_, i) =>
      createHash('sha256').update(`image ${i}`).digest('hex'),
    );
    const entries = keys.map((_, i) => entryOf(i));
    const warnings = [];
    const warn = (m) => warnings.push(m);

    // Floor: the same entries in a Map.
    const map = new Map();
    let t0 = performance.now();
    for (let i = 0; i < count; i++) map.set(keys[i], entries[i]);
    const mapPut = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < count; i++) if (!map.get(keys[i])) throw new Error('map miss');
    const mapGet = performance.now() - t0;

    // Puts, committed (the last batch by close()); then lookups in a new connection.
    t0 = performance.now();
    let cache = await store.openAnswerCache(work, { warn });
    const firstOpen = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < count; i++) cache.put(keys[i], entries[i]);
    await cache.close();
    const put = performance.now() - t0;
    t0 = performance.now();
    cache = await store.openAnswerCache(work, { warn });
    const reopen = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < count; i++) if (!cache.get(keys[i])) throw new Error(`cache miss ${i}`);
    const hit = performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < count; i++) if (cache.get(keys[i].replace(/^./, 'x'))) throw new Error();
    const miss = performance.now() - t0;
    const { entries: stored, bytes } = cache.stats();
    await cache.close();
    if (warnings.length > 0) throw new Error(`the cache warned: ${warnings.join('; ')}`);
    if (stored !== count) throw new Error(`${stored} entries stored of ${count}`);

    const node = median(Array.from({ length: runs }, () => timeNode(['-e', '0'])));
    const lmdb = median(
      Array.from({ length: runs }, () =>
        // As src/cache/store.ts loads it: its CommonJS build, through require().
        timeNode(['-e', "require('lmdb')"]),
      ),
    );

    rows.push([
      label,
      `${count.toLocaleString('en-US')} puts, committed`,
      perOp(put, count),
      `Map: ${perOp(mapPut, count)}`,
    ]);
    rows.push([
      '',
      `${count.toLocaleString('en-US')} lookups, hits`,
      perOp(hit, count),
      `Map: ${perOp(mapGet, count)}`,
    ]);
    rows.push(['', `${count.toLocaleString('en-US')} lookups, misses`, perOp(miss, count), '']);
    rows.push([
      '',
      'on disk',
      `${(bytes / 1048576).toFixed(1)} MB`,
      `${Math.round(bytes / count)} bytes an entry`,
    ]);
    rows.push([
      '',
      'open (lmdb loaded once)',
      `${firstOpen.toFixed(1)} ms`,
      `reopen ${reopen.toFixed(1)} ms`,
    ]);
    rows.push([
      '',
      "`require('lmdb')`, fresh process",
      `${lmdb.toFixed(0)} ms`,
      `+${(lmdb - node).toFixed(0)} ms over \`node -e 0\` (${node.toFixed(0)} ms)`,
    ]);
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(bundleDir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const rows = await cacheRows({ quick: process.argv.includes('--quick') });
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), 4));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(`describe-image cache bench · node ${process.version}`);
  for (const r of rows) console.log(line(r));
}
