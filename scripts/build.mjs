// Bundles src/ into dist/ with esbuild. One entry chunk holds what every run needs
// (commander, the option parser); modules that only a request needs (undici, ora, sharp's
// wrapper) are dynamic imports and land in their own chunks, so `--help` and `--version`
// never parse them.
import { spawnSync } from 'node:child_process';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));

// commander requires node:child_process at load time for executable subcommands, which this
// tool does not have; loading it costs a few ms of every start-up. It gets a proxy that loads
// the real module on first use.
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.importer.includes('node_modules/commander')
        ? { path: 'child_process', namespace: 'lazy' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents:
        "let real; module.exports = new Proxy({}, { get: (_, key) => (real ??= require('node:child_process'))[key] });",
      loader: 'js',
      resolveDir: root.pathname,
    }));
  },
};

// Built beside dist/ and swapped in, so a CLI running from dist/ never sees half a build.
const next = new URL('dist.next', root);
const old = new URL('dist.old', root);
await rm(next, { recursive: true, force: true });
await build({
  absWorkingDir: root.pathname,
  entryPoints: { main: 'src/main.ts' },
  outdir: 'dist.next',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: 'chunks/[name]-[hash]',
  // Native or WebAssembly packages are loaded from node_modules at run time.
  external: ['sharp', 'heic-decode', 'libheif-js', 'lmdb', 'exiftool-vendored'],
  define: { __VERSION__: JSON.stringify(pkg.version) },
  // Bundled CommonJS dependencies (undici, commander) call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [lazyChildProcess],
});

// `--help` alone is answered from this text, rendered once here by the same commander
// program, so that it starts as fast as `--version` (see src/main.ts).
const help = spawnSync(process.execPath, [new URL('dist.next/main.js', root).pathname, '--help'], {
  encoding: 'utf8',
  env: { PATH: process.env.PATH ?? '', COLUMNS: '80' },
});
if (help.status !== 0 || !help.stdout.startsWith('Usage:')) {
  throw new Error(`rendering --help failed: ${help.stderr || help.stdout}`);
}
await writeFile(new URL('dist.next/help.txt', root), help.stdout);

await rm(old, { recursive: true, force: true });
await rename(new URL('dist', root), old).catch(() => undefined);
await rename(next, new URL('dist', root));
await rm(old, { recursive: true, force: true });
