// The built chunk of a source module (dist/chunks/NAME-HASH.js) as a URL, for the floors that
// load the CLI's own code.
import { readdirSync } from 'node:fs';

const dir = new URL('../dist/chunks/', import.meta.url);

export function chunkUrl(name) {
  const file = readdirSync(dir).find((f) => new RegExp(`^${name}-[A-Z0-9]{8}\\.js$`).test(f));
  if (!file) throw new Error(`no chunk for ${name} in dist/chunks: run the build first`);
  return new URL(file, dir).href;
}
