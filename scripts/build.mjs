// Bundles src/ into dist/ with esbuild. One entry chunk holds what every run needs
// (commander, the option parser); modules that only a request needs (undici, ora, sharp's
// wrapper) are dynamic imports and land in their own chunks, so `--help` and `--version`
// never parse them.
import { readFile, rename, rm } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8'));

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
  external: ['sharp', 'heic-decode', 'libheif-js'],
  define: { __VERSION__: JSON.stringify(pkg.version) },
  // Bundled CommonJS dependencies (undici, commander) call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
});

await rm(old, { recursive: true, force: true });
await rename(new URL('dist', root), old).catch(() => undefined);
await rename(next, new URL('dist', root));
await rm(old, { recursive: true, force: true });
