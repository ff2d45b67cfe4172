#!/usr/bin/env node
// The least the answer cache can cost, for bench/run.mjs row 6: a fresh Node process that loads
// lmdb (as src/cache/store.ts does: require() of its CommonJS build, msgpackr's native helper
// off and LIBC named from the Node binary's ELF loader, as src/main.ts sets), opens a store
// and then either
//   hit DIR IMAGE   hashes IMAGE, looks its key up and prints the stored text (the first run
//                   stores it), which is what a cached single image cannot do without;
//   parsed DIR IMAGE  the same, after loading the CLI's option parser (src/cli.ts as built:
//                   commander, this tool's options and what their checks import) and parsing
//                   `-q IMAGE` with it, none of the run done: the options decide the key, so
//                   no hit can skip them; or
//   fill DIR N      stores N answers of ~600 bytes in one transaction, what a batch of N
//                   images with no hits adds to the same batch with --no-cache.
import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chunkUrl } from './chunks.mjs';

process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';
if (process.platform === 'linux' && process.env.LIBC === undefined) {
  // src/cache/libc.ts as built: the CLI loads it too.
  const { libcOfBinary } = await import(chunkUrl('libc'));
  const libc = libcOfBinary('/proc/self/exe');
  if (libc) process.env.LIBC = libc;
}
const [mode, dir, arg] = process.argv.slice(2);
if (mode === 'parsed') {
  const { createProgram } = await import(chunkUrl('cli'));
  let parsed;
  const deps = { stdout: process.stdout, stderr: process.stderr, env: {}, cwd: process.cwd() };
  await createProgram(deps, (inputs) => (parsed = inputs)).parseAsync(['-q', arg], {
    from: 'user',
  });
  if (parsed?.[0] !== arg) throw new Error(`the CLI did not parse ${arg}`);
}
const { open } = createRequire(import.meta.url)('lmdb');
const db = open({ path: path.join(dir, 'data.mdb'), encoding: 'string' });
if (mode === 'hit' || mode === 'parsed') {
  const key = hash('sha256', readFileSync(arg), 'hex');
  let text = db.get(key);
  if (text === undefined) {
    text = 'A ginger cat on a blue sofa.';
    db.putSync(key, text);
  }
  process.stdout.write(`${text}\n`);
} else if (mode === 'fill') {
  const answer = `An answer. ${'A ginger cat on a blue sofa. '.repeat(20)}`;
  db.transactionSync(() => {
    for (let i = 0; i < Number(arg); i++) db.putSync(hash('sha256', `image ${i}`, 'hex'), answer);
  });
} else {
  throw new Error('usage: cache-floor.mjs hit|parsed DIR IMAGE | fill DIR N');
}
db.close();
