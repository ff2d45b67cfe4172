#!/usr/bin/env node
// Thin entry point: turn on Node's compile cache (Node >= 22.1) before loading the bundle,
// so repeated runs skip parsing. Everything else lives in dist/main.js.
import module from 'node:module';

module.enableCompileCache?.();
await import('../dist/main.js');
