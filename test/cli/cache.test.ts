/**
 * The answer cache end to end (issue 11): the built CLI against a loopback server that counts
 * requests and numbers its answers, with a cache folder per test.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { isolatedHomes, jsonLines, runCli, type CliResult } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { runInProcess } from '../helpers/in-process.js';
import { answer, serverPool, type Handler, type TestServer } from '../helpers/server.js';

const serve = serverPool();
const KEY = 'sk-test-cache-0123456789';

interface CacheRecord {
  image: string;
  text: unknown;
  cached?: boolean;
  cost?: number;
  usage: { prompt_tokens: number } | null;
  error?: { code: number; message: string };
}

let root: string;
let homes: { XDG_CACHE_HOME: string; XDG_STATE_HOME: string };
let shade = 0;

/** A distinct small PNG at `name` under root; `copyOf` writes the same bytes again. */
async function image(name: string, copyOf?: string): Promise<string> {
  const full = path.join(root, name);
  await mkdir(path.dirname(full), { recursive: true });
  const bytes = copyOf
    ? await readFile(path.join(root, copyOf))
    : await makeImage('png', {
        width: 20,
        height: 20,
        color: `#${(40 + shade++ * 3).toString(16).padStart(2, '0')}8844`,
      });
  await writeFile(full, bytes);
  return name;
}

/** Answers "answer N" for the Nth request. */
function numbering(): Handler {
  let n = 0;
  return (req, res) => {
    n++;
    answer(req, res, { text: `answer ${n}`, id: `chatcmpl-${n}` });
  };
}

function run(
  server: TestServer,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return runCli(['--base-url', server.baseUrl, ...args], {
    cwd: root,
    env: { DESCRIBE_IMAGE_API_KEY: KEY, ...homes, ...env },
  });
}

const cacheDir = (): string => path.join(homes.XDG_CACHE_HOME, 'describe-image');

beforeEach(async () => {
  root = await tempDir('describe-image-cache-cli-');
  homes = isolatedHomes();
});

describe('a second run', () => {
  it('of a batch makes no request: the same answers, marked cached, at no cost; the summary counts them', async () => {
    const server = await serve(numbering());
    const names = await Promise.all(['a.png', 'b.png', 'c.png'].map((n) => image(n)));
    const first = await run(server, ['--json', ...names]);
    expect(first.code).toBe(0);
    expect(server.requests).toHaveLength(3);
    const again = await run(server, ['--json', ...names]);
    expect(again.code).toBe(0);
    expect(server.requests).toHaveLength(3);
    const before = jsonLines<CacheRecord>(first.stdout);
    const after = jsonLines<CacheRecord>(again.stdout);
    // --json lines come as images finish: compare each image's answer, not the order.
    const answers = (records: CacheRecord[]): Record<string, unknown> =>
      Object.fromEntries(records.map((r) => [r.image, r.text]));
    expect(Object.keys(answers(after)).sort()).toEqual(names);
    expect(answers(after)).toEqual(answers(before));
    for (const r of after) {
      expect(r.cached).toBe(true);
      expect(r.cost).toBe(0);
      expect(r.usage?.prompt_tokens).toBe(1250);
    }
    expect(again.stderr).toMatch(
      /^cache: 3 answers from the cache, no request made · ~\$[\d.]+ saved$/m,
    );
    expect(again.stderr).toMatch(/^tokens: 0 in · 0 out · 0 total$/m);
  });

  it('--refresh asks again and replaces the stored answers', async () => {
    const server = await serve(numbering());
    const names = await Promise.all(['r1.png', 'r2.png'].map((n) => image(n)));
    await run(server, names);
    const refreshed = await run(server, ['--refresh', '--json', ...names]);
    expect(server.requests).toHaveLength(4);
    expect(jsonLines<CacheRecord>(refreshed.stdout).every((r) => r.cached === undefined)).toBe(
      true,
    );
    const later = await run(server, ['--json', ...names]);
    expect(server.requests).toHaveLength(4);
    expect(
      jsonLines<CacheRecord>(later.stdout)
        .map((r) => r.text)
        .sort(),
    ).toEqual(['answer 3', 'answer 4']);
  });

  it('--cache-only answers what is stored and fails the rest with exit 8, asking nothing', async () => {
    const server = await serve(numbering());
    const known = await image('known.png');
    const unknown = await image('unknown.png');
    await run(server, [known]);
    const r = await run(server, ['--cache-only', '--json', known, unknown]);
    expect(r.code).toBe(8);
    expect(server.requests).toHaveLength(1);
    const [hit, miss] = jsonLines<CacheRecord>(r.stdout);
    expect(hit).toMatchObject({ image: known, text: 'answer 1', cached: true });
    expect(miss).toMatchObject({ image: unknown, text: null, error: { code: 8 } });
    expect(r.stderr).toContain(`${unknown}: no stored answer (--cache-only asks nothing)`);
  });

  it('one image: the cached answer alone on stdout, and on a terminal one line saying so, with the date', async () => {
    const server = await serve(numbering());
    const a = await image('single.png');
    await run(server, [a]);
    const piped = await run(server, [a]);
    expect(piped.stdout).toBe('answer 1\n');
    expect(piped.stderr).toBe('');
    const onTerminal = await runInProcess([a], {
      cwd: root,
      terminal: true,
      env: {
        DESCRIBE_IMAGE_BASE_URL: server.baseUrl,
        DESCRIBE_IMAGE_API_KEY: KEY,
        NO_COLOR: '1',
        ...homes,
      },
    });
    expect(onTerminal.stdout).toBe('answer 1\n');
    const today = new Date().toISOString().slice(0, 10);
    expect(onTerminal.stderr).toBe(
      `answer from the cache (asked ${today}): no request made; --refresh asks again\n`,
    );
    expect(server.requests).toHaveLength(1);
  });
});

describe('what the key holds', () => {
  it('the same bytes under another name, with other output options, make no request', async () => {
    const server = await serve(numbering());
    const a = await image('orig.png');
    const b = await image('elsewhere/copy.png', a);
    await run(server, [a]);
    await run(server, ['-o', 'out.jsonl', b]);
    await run(server, ['--sidecar', '--json', b]);
    expect(server.requests).toHaveLength(1);
    expect(await readFile(path.join(root, 'elsewhere/copy.png.json'), 'utf8')).toContain(
      '"answer 1"',
    );
  });

  it('another prompt, model, detail, system message, token limit or temperature asks again', async () => {
    const server = await serve(numbering());
    const a = await image('key.png');
    const variants = [
      [],
      ['What colour is it?'],
      ['-m', 'gpt-4.1'],
      ['--detail', 'low'],
      ['-s', 'Be brief.'],
      ['--max-tokens', '50'],
      ['--temperature', '0.2'],
    ];
    for (const extra of variants) await run(server, [a, ...extra]);
    expect(server.requests).toHaveLength(variants.length);
    // And each of them, asked again, is a hit.
    for (const extra of variants) await run(server, [a, ...extra]);
    expect(server.requests).toHaveLength(variants.length);
  });

  it('identical images in one batch are asked once, and each gets the answer', async () => {
    const server = await serve(numbering());
    const a = await image('dup/1.png');
    await image('dup/2.png', a);
    await image('dup/3.png', a);
    const r = await run(server, ['--json', 'dup']);
    expect(r.code).toBe(0);
    expect(server.requests).toHaveLength(1);
    expect(jsonLines<CacheRecord>(r.stdout).map((x) => x.text)).toEqual([
      'answer 1',
      'answer 1',
      'answer 1',
    ]);
  });
});

describe('what is not stored', () => {
  it.each<[string, { refusal?: boolean; finish?: string }]>([
    ['a refusal', { refusal: true }],
    ['an answer cut at the token limit', { finish: 'length' }],
  ])('%s is asked again next time', async (_name, how) => {
    const server = await serve((req, res) => {
      if (how.refusal) {
        answer(req, res, { refusal: 'No.' });
        return;
      }
      answer(req, res, { text: 'cut sh', finishReason: how.finish ?? 'stop' });
    });
    const a = await image('notstored.png');
    await run(server, ['--no-stream', a]);
    await run(server, ['--no-stream', a]);
    expect(server.requests).toHaveLength(2);
  });

  it('a structured answer that fails its schema (twice) is not stored', async () => {
    const server = await serve((req, res) => answer(req, res, { text: '{"nope": 1}' }));
    const a = await image('schema.png');
    const first = await run(server, ['--preset', 'tags', a]);
    expect(first.code).toBe(6);
    await run(server, ['--preset', 'tags', a]);
    expect(server.requests).toHaveLength(4);
  });

  it('a structured answer that passes is stored, and shown the same from the cache', async () => {
    const server = await serve((req, res) => answer(req, res, { text: '{"tags":["cat","sofa"]}' }));
    const a = await image('tags.png');
    const first = await run(server, ['--preset', 'tags', '--json', a]);
    const again = await run(server, ['--preset', 'tags', '--json', a]);
    expect(server.requests).toHaveLength(1);
    expect(jsonLines<CacheRecord>(again.stdout)[0]!.text).toEqual(
      jsonLines<CacheRecord>(first.stdout)[0]!.text,
    );
    expect(jsonLines<CacheRecord>(again.stdout)[0]!.text).toEqual(['cat', 'sofa']);
  });
});

describe('turning it off, and looking after it', () => {
  it('--no-cache neither reads nor writes', async () => {
    const server = await serve(numbering());
    const a = await image('nocache.png');
    await run(server, ['--no-cache', a]);
    await run(server, ['--no-cache', a]);
    await run(server, [a]);
    expect(server.requests).toHaveLength(3);
  });

  it('"cache": false in the config file (or a profile) turns it off; --print-config says where it is', async () => {
    const server = await serve(numbering());
    const a = await image('configured.png');
    const config = path.join(root, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ cache: false, profiles: { cached: { cache: true } } }),
    );
    const env = { DESCRIBE_IMAGE_CONFIG: config };
    await run(server, [a], env);
    await run(server, [a], env);
    expect(server.requests).toHaveLength(2);
    const shown = await run(server, ['--print-config'], env);
    expect(shown.stdout).toMatch(/^cache +off +\(config file\)$/m);
    const on = await run(server, ['--print-config', '--profile', 'cached'], env);
    expect(on.stdout).toContain(`on, ${cacheDir()}`);
  });

  it('--cache-stats, --cache-prune and --cache-clear', async () => {
    const server = await serve(numbering());
    const names = await Promise.all(['s1.png', 's2.png'].map((n) => image(n)));
    await run(server, names);
    const stats = await run(server, ['--cache-stats', '--json']);
    expect(JSON.parse(stats.stdout)).toMatchObject({ dir: cacheDir(), entries: 2 });
    const pruned = await run(server, ['--cache-prune', '30d']);
    expect(pruned.stdout).toContain('removed 0 answers');
    const cleared = await run(server, ['--cache-clear']);
    expect(cleared.stdout).toMatch(/^removed 2 answers$/m);
    expect(cleared.stdout).toMatch(/: 0 answers, /);
    const bad = await run(server, ['--cache-prune', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('give an age like 30d, 12h or 90m');
  });

  it('holds no image bytes and no key, readable by the user alone', async () => {
    const server = await serve(numbering());
    const a = await image('private.png');
    await run(server, [a]);
    const data = await readFile(path.join(cacheDir(), 'data.mdb'));
    const bytes = await readFile(path.join(root, a));
    expect(data.includes(bytes.subarray(8, 40))).toBe(false);
    expect(data.includes(Buffer.from(bytes.toString('base64').slice(0, 40)))).toBe(false);
    expect(data.includes(Buffer.from(KEY))).toBe(false);
    expect((await stat(cacheDir())).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(cacheDir(), 'data.mdb'))).mode & 0o777).toBe(0o600);
  });
});

describe('a cache that cannot be trusted', () => {
  it('a damaged store: one warning, moved aside, and the answer is still right', async () => {
    const server = await serve(numbering());
    const a = await image('damaged.png');
    await run(server, [a]);
    await writeFile(path.join(cacheDir(), 'data.mdb'), Buffer.alloc(64 * 1024, 0x5a));
    const r = await run(server, ['--no-stream', a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('answer 2\n');
    expect(r.stderr.match(/warning:/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/damaged/);
    // Started afresh: the new answer is stored.
    await run(server, [a]);
    expect(server.requests).toHaveLength(2);
  });

  it('a cache folder that cannot be made (a file in its place): a warning, and answers as without a cache', async () => {
    const server = await serve(numbering());
    const a = await image('blocked.png');
    await mkdir(homes.XDG_CACHE_HOME, { recursive: true });
    await writeFile(cacheDir(), 'not a folder');
    const r = await run(server, ['--no-stream', a]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('answer 1\n');
    expect(r.stderr).toMatch(/warning: .*cache/);
  });

  it('two processes filling one cache at once: no corruption, and every later lookup is a hit', async () => {
    const server = await serve(async (req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      answer(req, res, {
        text: `for ${String(req.json?.messages?.[0]?.content?.[1]?.image_url?.url?.length)}`,
      });
    });
    const names = await Promise.all(
      Array.from({ length: 12 }, (_, i) => image(`both/${String(i).padStart(2, '0')}.png`)),
    );
    // Overlapping halves, run at the same time.
    const [x, y] = await Promise.all([
      run(server, ['-c', '3', ...names.slice(0, 8)]),
      run(server, ['-c', '3', ...names.slice(4)]),
    ]);
    expect(x.code).toBe(0);
    expect(y.code).toBe(0);
    const asked = server.requests.length;
    expect(asked).toBeGreaterThanOrEqual(12);
    const later = await run(server, ['--json', 'both']);
    expect(later.code).toBe(0);
    expect(server.requests).toHaveLength(asked);
    expect(jsonLines<CacheRecord>(later.stdout).every((r) => r.cached === true)).toBe(true);
  });
});
