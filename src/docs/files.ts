/**
 * The document arguments of `--alt-check` and `--alt-fill`: files, quoted globs and
 * directories, expanded to the Markdown, MDX and HTML files they name, each once, in order.
 */
import path from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { isGlobPattern, pathKind } from '../input/expand.js';
import { neutralize } from '../output/guard.js';
import { DOCUMENT_EXTENSIONS, documentKind } from './document.js';

/** Folders never walked into when a directory is given. */
const SKIPPED_DIRS = ['**/node_modules/**', '**/.git/**'];

const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The documents named by `args` (relative to `cwd`, as given). A glob or directory that holds
 * no document is a `UsageError`; a named file that does not exist is an `InputError`; a named
 * file of another kind is a `UsageError` (a document argument is never an image).
 */
export async function expandDocuments(args: readonly string[], cwd: string): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const take = (file: string): void => {
    const key = path.resolve(cwd, file);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(file);
    }
  };
  const list = DOCUMENT_EXTENSIONS.map((e) => e.slice(1)).join(',');
  for (const arg of args) {
    const kind = await pathKind(arg, cwd);
    if (kind === 'file') {
      if (!documentKind(arg))
        throw new UsageError(
          `${neutralize(arg)}: not a Markdown, MDX or HTML document (${DOCUMENT_EXTENSIONS.join(' ')})`,
        );
      take(arg);
      continue;
    }
    if (kind === 'missing' && !isGlobPattern(arg))
      throw new InputError(`${neutralize(arg)}: no such file`);
    const { glob } = await import('tinyglobby');
    const pattern = kind === 'dir' ? `${arg.replace(/\/+$/, '')}/**/*.{${list}}` : arg;
    const matches = await glob(pattern, {
      cwd,
      absolute: path.isAbsolute(arg),
      dot: false,
      onlyFiles: true,
      expandDirectories: false,
      caseSensitiveMatch: kind !== 'dir',
      ignore: kind === 'dir' ? SKIPPED_DIRS : [],
    });
    const documents = matches.filter((m) => documentKind(m) !== undefined).sort(byPath);
    if (documents.length === 0) {
      throw new UsageError(
        kind === 'dir'
          ? `${neutralize(arg)}: the directory holds no Markdown, MDX or HTML document`
          : `no documents match ${neutralize(arg)}`,
      );
    }
    documents.forEach(take);
  }
  return out;
}
