#!/usr/bin/env node
// What loading the code of a cached single image costs, for bench/run.mjs row 6: a fresh Node
// process that imports the chunks of dist/ a describe run imports before it does anything
// (src/main.ts's Promise.all, then the modules src/cli.ts fetches at once for a run with the
// cache on), with their static imports, and runs nothing. Next to bench/cache-floor.mjs (lmdb
// alone), it shows where a hit's time goes.
import { chunkUrl } from './chunks.mjs';

const ENTRIES = [
  // src/main.ts
  'errors',
  'deps',
  'registry',
  'libc',
  'cli',
  // src/cli.ts, a describe run
  'config-file',
  'expand',
  'images',
  'describe',
  'store',
];
await Promise.all(ENTRIES.map((name) => import(chunkUrl(name))));
