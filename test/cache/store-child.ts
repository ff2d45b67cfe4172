/**
 * A process using the answer cache, for processes.test.ts (bundled with esbuild and run with
 * node). It prints one JSON line: its warnings, and what its lookups found.
 *
 *   fill DIR FROM TO   wait for "go" on stdin, then store answers FROM..TO-1 in rounds,
 *                      looking each one up again; report any that came back wrong
 *   full DIR COUNT     store COUNT answers (the file size limit of the shell that started it
 *                      stands in for a full disk), then look each one up
 *   read DIR COUNT     look answers 0..COUNT-1 up
 *   endless DIR        store answers 0, 1, 2… until killed, saying "ready" after a while
 */
import { openAnswerCache } from '../../src/cache/store.js';
import { entryOf, keyOf } from './answers.js';

const [scenario = '', dir = '', a = '0', b = '0'] = process.argv.slice(2);
const warnings: string[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Looks answers up: how many were there, missing, or not what was stored under that key. */
function lookUp(cache: Awaited<ReturnType<typeof openAnswerCache>>, from: number, to: number) {
  const found = { hits: 0, misses: 0, wrong: 0 };
  const expected = (i: number) => JSON.stringify(entryOf(i));
  for (let i = from; i < to; i++) {
    const entry = cache.get(keyOf(i));
    if (entry === undefined) found.misses++;
    else if (JSON.stringify(entry) === expected(i)) found.hits++;
    else found.wrong++;
  }
  return found;
}

async function main(): Promise<object> {
  if (scenario === 'full') {
    // With a file size limit the kernel sends SIGXFSZ; ignored, the write fails with EFBIG
    // as it would with ENOSPC on a full disk.
    process.on('SIGXFSZ', () => undefined);
  }
  const cache = await openAnswerCache(dir, { warn: (m) => warnings.push(m) });
  switch (scenario) {
    case 'fill': {
      process.stdout.write('ready\n');
      for await (const _line of process.stdin) break;
      const from = Number(a);
      const to = Number(b);
      let wrong = 0;
      for (let i = from; i < to; i++) {
        cache.put(keyOf(i), entryOf(i));
        if (i % 40 === 0) await sleep(Math.floor(Math.random() * 15));
        if (i % 7 === 0) wrong += lookUp(cache, Math.max(from, i - 50), i + 1).wrong;
      }
      await cache.close();
      return { warnings, wrong };
    }
    case 'full': {
      const count = Number(a);
      for (let i = 0; i < count; i++) {
        cache.put(keyOf(i), entryOf(i));
        if (i % 200 === 0) await sleep(60);
      }
      const found = lookUp(cache, 0, count);
      await cache.close();
      return { warnings, ...found };
    }
    case 'endless': {
      for (let i = 0; ; i++) {
        cache.put(keyOf(i), entryOf(i));
        if (i === 1000) process.stdout.write('ready\n');
        if (i % 100 === 0) await sleep(1);
      }
    }
    case 'read': {
      const found = lookUp(cache, 0, Number(a));
      await cache.close();
      return { warnings, ...found };
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

process.stdout.write(`${JSON.stringify(await main())}\n`);
