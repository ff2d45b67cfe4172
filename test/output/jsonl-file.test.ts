/**
 * JsonlFile and readFinished (src/output/jsonl-file.ts) on real files: whole lines appended,
 * a fresh line after a torn one, and what --resume reads back as already done.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { JsonlFile, readFinished, resumeKey } from '../../src/output/jsonl-file.js';
import { Redactor } from '../../src/output/guard.js';
import { tempDir } from '../helpers/images.js';

let root: string;
let counter = 0;

/** A fresh file name in root (relative), with optional initial content. */
async function fresh(content?: string): Promise<string> {
  const name = `out-${counter++}.jsonl`;
  if (content !== undefined) await writeFile(path.join(root, name), content);
  return name;
}

function line(record: object): string {
  return `${JSON.stringify(record)}\n`;
}

const ok = (image: string, text = 'an answer'): string =>
  line({ image, index: 0, text, model: 'm', finish_reason: 'stop', usage: null, id: 'x', ms: 1 });
const failed = (image: string): string =>
  line({ image, index: 0, text: null, error: { code: 7, message: `${image}: boom` } });

beforeAll(async () => {
  root = await tempDir('describe-image-jsonl-');
  await mkdir(path.join(root, 'sub'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('JsonlFile', () => {
  it('creates the file and appends whole lines, in order', async () => {
    const name = await fresh();
    const file = JsonlFile.open(name, root, new Redactor());
    file.append(ok('a.png'));
    file.append(ok('b.png'));
    file.close();
    expect(await readFile(path.join(root, name), 'utf8')).toBe(ok('a.png') + ok('b.png'));
  });

  it('each line is on disk as soon as it is appended (nothing held back until close)', async () => {
    const name = await fresh();
    const file = JsonlFile.open(name, root, new Redactor());
    file.append(ok('a.png'));
    expect(await readFile(path.join(root, name), 'utf8')).toBe(ok('a.png'));
    file.append(failed('b.png'));
    expect(await readFile(path.join(root, name), 'utf8')).toBe(ok('a.png') + failed('b.png'));
    file.close();
  });

  it('appends after what the file already holds', async () => {
    const name = await fresh(ok('old.png'));
    const file = JsonlFile.open(name, root, new Redactor());
    file.append(ok('new.png'));
    file.close();
    expect(await readFile(path.join(root, name), 'utf8')).toBe(ok('old.png') + ok('new.png'));
  });

  it('starts on a fresh line after a torn last line (no gluing onto it)', async () => {
    const torn = ok('torn.png').slice(0, 25);
    const name = await fresh(ok('old.png') + torn);
    const file = JsonlFile.open(name, root, new Redactor());
    file.append(ok('new.png'));
    file.close();
    const text = await readFile(path.join(root, name), 'utf8');
    expect(text).toBe(`${ok('old.png')}${torn}\n${ok('new.png')}`);
    const lines = text.split('\n');
    expect(JSON.parse(lines[2]!)).toMatchObject({ image: 'new.png' });
  });

  it('adds nothing to an empty file, or to one that ends in a newline, even with nothing appended', async () => {
    const empty = await fresh('');
    JsonlFile.open(empty, root, new Redactor()).close();
    expect(await readFile(path.join(root, empty), 'utf8')).toBe('');
    const whole = await fresh(ok('a.png'));
    JsonlFile.open(whole, root, new Redactor()).close();
    expect(await readFile(path.join(root, whole), 'utf8')).toBe(ok('a.png'));
  });

  it('resolves a relative path against cwd, and takes an absolute one as it is', async () => {
    const file = JsonlFile.open('sub/rel.jsonl', root, new Redactor());
    file.append(ok('a.png'));
    file.close();
    expect(await readFile(path.join(root, 'sub/rel.jsonl'), 'utf8')).toBe(ok('a.png'));
    const abs = path.join(root, 'sub/abs.jsonl');
    const other = JsonlFile.open(abs, '/nonexistent-cwd', new Redactor());
    other.append(ok('b.png'));
    other.close();
    expect(await readFile(abs, 'utf8')).toBe(ok('b.png'));
  });

  it('a file in a missing directory is an InputError naming it', () => {
    expect(() => JsonlFile.open('no-such-dir/out.jsonl', root, new Redactor())).toThrow(InputError);
    expect(() => JsonlFile.open('no-such-dir/out.jsonl', root, new Redactor())).toThrow(
      /no-such-dir\/out\.jsonl/,
    );
  });

  it('a directory as the file is an InputError', () => {
    expect(() => JsonlFile.open('sub', root, new Redactor())).toThrow(InputError);
  });

  it('close is idempotent; append after close throws', async () => {
    const file = JsonlFile.open(await fresh(), root, new Redactor());
    file.close();
    file.close();
    expect(() => file.append(ok('a.png'))).toThrow(/closed/);
  });

  it('a long line is written whole', async () => {
    const name = await fresh();
    const file = JsonlFile.open(name, root, new Redactor());
    const long = ok('big.png', 'x'.repeat(1_000_000));
    file.append(long);
    file.append(ok('after.png'));
    file.close();
    expect(await readFile(path.join(root, name), 'utf8')).toBe(long + ok('after.png'));
  });
});

describe('resumeKey', () => {
  it('is the absolute path for a file, the URL for a URL, none for stdin or a data URL', () => {
    expect(resumeKey('a.png', '/work')).toBe(path.resolve('/work', 'a.png'));
    expect(resumeKey('./dir/../a.png', '/work')).toBe(path.resolve('/work', 'a.png'));
    expect(resumeKey('/abs/a.png', '/work')).toBe('/abs/a.png');
    expect(resumeKey('https://example.com/a.png', '/work')).toBe('https://example.com/a.png');
    expect(resumeKey('-', '/work')).toBeUndefined();
    expect(resumeKey('data:image/png;base64,…', '/work')).toBeUndefined();
  });
});

describe('readFinished', () => {
  it('is empty for a missing file', async () => {
    expect((await readFinished('does-not-exist.jsonl', root)).size).toBe(0);
  });

  it('holds the images with an answer, by absolute path (relative paths against cwd) or URL', async () => {
    const name = await fresh(
      ok('a.png') +
        ok('./sub/b.png') +
        ok(path.join(root, 'abs.png')) +
        ok('https://example.com/c.jpg'),
    );
    const done = await readFinished(name, root);
    expect([...done].sort()).toEqual(
      [
        path.join(root, 'a.png'),
        path.join(root, 'sub/b.png'),
        path.join(root, 'abs.png'),
        'https://example.com/c.jpg',
      ].sort(),
    );
  });

  it("resolves against the cwd it is given, not the file's directory", async () => {
    const name = `sub/${await fresh()}`;
    await writeFile(path.join(root, name), ok('a.png'));
    expect([...(await readFinished(name, root))]).toEqual([path.join(root, 'a.png')]);
    expect([...(await readFinished(path.join(root, name), '/elsewhere'))]).toEqual([
      path.join('/elsewhere', 'a.png'),
    ]);
  });

  it('ignores error records, torn lines, blank lines and records without an image', async () => {
    const name = await fresh(
      [
        ok('good.png'),
        failed('bad.png'),
        '\n',
        '   \n',
        ok('torn.png').slice(0, 20) + '\n',
        line({ text: 'no image' }),
        line({ image: 42, text: 'not a name' }),
        'not json at all\n',
        ok('-'),
        ok('data:image/png;base64,AAAA'),
        ok('last-torn.png').slice(0, 30),
      ].join(''),
    );
    const done = await readFinished(name, root);
    expect([...done]).toEqual([path.join(root, 'good.png')]);
  });

  it('an image that failed once and succeeded later is done; one that only failed is not', async () => {
    const name = await fresh(failed('a.png') + ok('a.png') + failed('b.png') + failed('b.png'));
    expect([...(await readFinished(name, root))]).toEqual([path.join(root, 'a.png')]);
  });

  it('reads CRLF line endings', async () => {
    const name = await fresh(ok('a.png').replace('\n', '\r\n') + ok('b.png').replace('\n', '\r\n'));
    expect([...(await readFinished(name, root))].sort()).toEqual(
      [path.join(root, 'a.png'), path.join(root, 'b.png')].sort(),
    );
  });

  it('round trip: what JsonlFile wrote (after a torn line) reads back', async () => {
    const name = await fresh(ok('one.png') + ok('two.png').slice(0, 10));
    const file = JsonlFile.open(name, root, new Redactor());
    file.append(ok('three.png'));
    file.append(failed('four.png'));
    file.close();
    expect([...(await readFinished(name, root))].sort()).toEqual(
      [path.join(root, 'one.png'), path.join(root, 'three.png')].sort(),
    );
  });

  it('a directory is an InputError, not "nothing done"', async () => {
    await expect(readFinished('sub', root)).rejects.toThrow(InputError);
  });
});
