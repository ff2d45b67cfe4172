/**
 * End to end, settings: the config file and its profiles (precedence checked on what the server
 * receives), --print-config (never a whole key), --save-key (mode 0600, never echoed), and the
 * cost lines. Every run points DESCRIBE_IMAGE_CONFIG (or XDG_CONFIG_HOME) at a temp path, so
 * no real config is read or written.
 */
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runCliWithConfig, type CliOptions } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { answer, okHandler, serverPool } from '../helpers/server.js';
import type { Handler, RecordedRequest, TestServer } from '../helpers/server.js';

const USAGE_LINE = 'tokens: 1,250 in · 89 out · 1,339 total';
const COST_LINE = 'cost: ~$0.0040 (estimate: $2.50/M in, $10.00/M out)';
const ERROR_PREFIX = 'describe-image: error: ';

// Images by URL where the image does not matter: nothing to prepare, so each run is quicker.
const CAT = 'https://example.com/cat.png';
const A = 'https://example.com/a.png';
const B = 'https://example.com/b.png';

let dir: string;
let n = 0;
const serve = serverPool();

/** A path for a config file that does not exist yet, in a fresh folder. */
async function freshConfigPath(): Promise<string> {
  const folder = path.join(dir, `cfg${++n}`);
  await mkdir(folder);
  return path.join(folder, 'config.json');
}

/** Writes a config file (mode 0600 unless told) and returns its path. */
async function writeConfig(value: unknown, mode = 0o600): Promise<string> {
  const file = await freshConfigPath();
  await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  await chmod(file, mode);
  return file;
}

function run(args: string[], config: string, opts: CliOptions = {}) {
  return runCliWithConfig(args, dir, config, opts);
}

function errorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith(ERROR_PREFIX));
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

function imageDetail(req: RecordedRequest): unknown {
  const user = (req.json.messages as { role: string; content: any[] }[]).find(
    (m) => m.role === 'user',
  )!;
  const image = user.content.find((p: { type: string }) => p.type === 'image_url');
  return image.image_url.detail;
}

/** The request whose prompt (the user message's text) is `prompt`. */
function byPrompt(server: TestServer, prompt: string): RecordedRequest {
  const found = server.requests.filter((req) => {
    const user = (req.json?.messages as { role: string; content: any[] }[] | undefined)?.find(
      (m) => m.role === 'user',
    );
    return user?.content.some((p: { text?: string }) => p.text === prompt);
  });
  expect(found, `one request with the prompt ${prompt}`).toHaveLength(1);
  return found[0]!;
}

/** The chat request (the last POST) a server received. */
function chat(server: TestServer): RecordedRequest {
  const posts = server.requests.filter((r) => r.method === 'POST');
  expect(posts).toHaveLength(1);
  return posts[0]!;
}

/** A server that answers at any path; base URLs are told apart by their first segment. */
async function anyPathServer(handler: Handler = okHandler()): Promise<TestServer> {
  return serve(handler);
}

beforeAll(async () => {
  dir = await tempDir('describe-image-cli-config-');
  await writeFile(path.join(dir, 'cat.png'), await makeImage('png'));
  await writeFile(path.join(dir, 'a.png'), await makeImage('png', { color: '#ff0000' }));
  await writeFile(path.join(dir, 'b.png'), await makeImage('png', { color: '#00ff00' }));
  await writeFile(path.join(dir, 'key.txt'), 'sk-from-key-file-000000000001\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('precedence: flag, environment, profile, config top level, default', () => {
  it('model, image detail and max tokens (checked in the body the server receives)', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      model: 'top-model',
      detail: 'low',
      maxTokens: 100,
      profiles: { work: { model: 'profile-model', detail: 'high', maxTokens: 200 }, bare: {} },
    });
    const env = { DESCRIBE_IMAGE_MODEL: 'env-model' };
    // detail and maxTokens have no variable of their own: after the flags comes the profile.
    const cases: {
      args: string[];
      env: Record<string, string>;
      model: string;
      detail: string;
      maxTokens: number;
    }[] = [
      {
        args: ['-m', 'flag-model', '--detail', 'auto', '--max-tokens', '50', '--profile', 'work'],
        env,
        model: 'flag-model',
        detail: 'auto',
        maxTokens: 50,
      },
      { args: ['--profile', 'work'], env, model: 'env-model', detail: 'high', maxTokens: 200 },
      {
        args: ['--profile', 'work'],
        env: {},
        model: 'profile-model',
        detail: 'high',
        maxTokens: 200,
      },
      { args: ['--profile', 'bare'], env: {}, model: 'top-model', detail: 'low', maxTokens: 100 },
    ];
    const results = await Promise.all(
      cases.map((c, i) => run([...c.args, CAT, `case ${i}`], config, { env: c.env })),
    );
    for (const [i, c] of cases.entries()) {
      expect(results[i]!.code, results[i]!.stderr).toBe(0);
      const req = byPrompt(server, `case ${i}`);
      const what = `${c.args.join(' ')} ${JSON.stringify(c.env)}`;
      expect(req.json.model, what).toBe(c.model);
      expect(imageDetail(req), what).toBe(c.detail);
      expect(req.json.max_tokens, what).toBe(c.maxTokens);
    }
    // Nothing set anywhere: the default model, no detail, no max_tokens.
    await run([CAT], await writeConfig({ baseUrl: server.baseUrl }));
    const body = server.requests.at(-1)!;
    expect(body.json.model).toBe('gpt-4o-2024-08-06');
    expect(imageDetail(body)).toBeUndefined();
    expect('max_tokens' in body.json).toBe(false);
  });

  it('base URL', async () => {
    const server = await anyPathServer();
    const at = (name: string) => `${server.origin}/${name}/v1`;
    const config = await writeConfig({
      baseUrl: at('top'),
      profiles: { work: { baseUrl: at('profile') }, bare: {} },
    });
    const cases: [string[], Record<string, string>, string][] = [
      [
        ['--base-url', at('flag'), '--profile', 'work'],
        { DESCRIBE_IMAGE_BASE_URL: at('env'), OPENAI_BASE_URL: at('openai-env') },
        '/flag/v1/chat/completions',
      ],
      [
        ['--profile', 'work'],
        { DESCRIBE_IMAGE_BASE_URL: at('env'), OPENAI_BASE_URL: at('openai-env') },
        '/env/v1/chat/completions',
      ],
      // OPENAI_BASE_URL belongs to --provider openai, not to this file's maxtoken.
      [
        ['--profile', 'work'],
        { OPENAI_BASE_URL: at('openai-env') },
        '/profile/v1/chat/completions',
      ],
      [['--profile', 'work'], {}, '/profile/v1/chat/completions'],
      [['--profile', 'bare'], {}, '/top/v1/chat/completions'],
    ];
    const results = await Promise.all(
      cases.map(([args, env], i) => run([...args, CAT, `case ${i}`], config, { env })),
    );
    expect(server.requests).toHaveLength(cases.length);
    for (const [i, [args, , url]] of cases.entries()) {
      expect(results[i]!.code, results[i]!.stderr).toBe(0);
      expect(byPrompt(server, `case ${i}`).url, args.join(' ')).toBe(url);
    }
    // Nothing anywhere: the default, shown without sending by --dry-run.
    const r = await run(['--dry-run', CAT], await freshConfigPath());
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')[0]).toBe('POST https://api.maxtoken.io/v1/chat/completions');
  });

  it('API key: --api-key-file, DESCRIBE_IMAGE_API_KEY, apiKeyEnv, provider variables, profile apiKey, top-level apiKey', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      apiKey: 'sk-top-level-000000000006',
      profiles: {
        work: { apiKey: 'sk-profile-key-000000000005', apiKeyEnv: 'WORK_API_KEY' },
        bare: {},
      },
    });
    const all = {
      DESCRIBE_IMAGE_API_KEY: 'sk-describe-env-000000000002',
      WORK_API_KEY: 'sk-work-env-000000000003',
      MAXTOKEN_API_KEY: 'sk-maxtoken-env-000000000004',
      OPENAI_API_KEY: 'sk-openai-env-000000000004b',
    };
    const { DESCRIBE_IMAGE_API_KEY: _d, ...noDescribe } = all;
    const { WORK_API_KEY: _w, ...noWork } = noDescribe;
    // MAXTOKEN_API_KEY and OPENAI_API_KEY go only to their vendors, not to this server: the
    // profile's key, which goes to the configured base URL, is next.
    const cases: [string[], Record<string, string>, string][] = [
      [['--api-key-file', 'key.txt', '--profile', 'work'], all, 'sk-from-key-file-000000000001'],
      [['--profile', 'work'], all, 'sk-describe-env-000000000002'],
      [['--profile', 'work'], noDescribe, 'sk-work-env-000000000003'],
      [['--profile', 'work'], noWork, 'sk-profile-key-000000000005'],
      [
        ['--profile', 'work'],
        { OPENAI_API_KEY: 'sk-openai-env-000000000004b' },
        'sk-profile-key-000000000005',
      ],
      [['--profile', 'work'], {}, 'sk-profile-key-000000000005'],
      [['--profile', 'bare'], {}, 'sk-top-level-000000000006'],
    ];
    const results = await Promise.all(
      cases.map(([args, env], i) => run([...args, CAT, `case ${i}`], config, { env })),
    );
    for (const [i, [args, env, key]] of cases.entries()) {
      const r = results[i]!;
      expect(r.code, r.stderr).toBe(0);
      expect(
        byPrompt(server, `case ${i}`).headers.authorization,
        `${args.join(' ')} ${Object.keys(env).join(' ')}`,
      ).toBe(`Bearer ${key}`);
      // The key never reaches the terminal.
      expect(r.stderr + r.stdout).not.toContain(key);
    }
    const vendorKeys = [all.MAXTOKEN_API_KEY, all.OPENAI_API_KEY];
    for (const req of server.requests)
      for (const key of vendorKeys) expect(JSON.stringify(req.headers)).not.toContain(key);
  });

  it('--max-completion-tokens sets the config file’s maxTokens aside', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({ baseUrl: server.baseUrl, maxTokens: 100 });
    const r = await run(['--max-completion-tokens', '999', CAT], config);
    expect(r.code, r.stderr).toBe(0);
    const body = server.requests[0]!.json;
    expect(body.max_completion_tokens).toBe(999);
    expect('max_tokens' in body).toBe(false);
  });

  it('provider: --provider beats DESCRIBE_IMAGE_PROVIDER, which beats the file', async () => {
    const config = await writeConfig({ provider: 'openai' });
    const print = async (args: string[], env: Record<string, string> = {}) =>
      JSON.parse(
        (await run(['--print-config', '--json', ...args], config, { env })).stdout,
      ) as Record<string, any>;
    expect((await print([])).provider).toEqual({ value: 'openai (OpenAI)', source: 'config file' });
    expect((await print([], { DESCRIBE_IMAGE_PROVIDER: 'gemini' })).provider.source).toBe(
      '$DESCRIBE_IMAGE_PROVIDER',
    );
    expect(
      (await print(['--provider', 'vllm'], { DESCRIBE_IMAGE_PROVIDER: 'gemini' })).provider,
    ).toEqual({ value: 'vllm (vLLM)', source: '--provider' });
  });
});

describe('profiles', () => {
  it('DESCRIBE_IMAGE_PROFILE selects a profile', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: `${server.origin}/top/v1`,
      model: 'top-model',
      profiles: { work: { baseUrl: `${server.origin}/work/v1`, model: 'work-model' } },
    });
    const r = await run([CAT], config, { env: { DESCRIBE_IMAGE_PROFILE: 'work' } });
    expect(r.code).toBe(0);
    expect(server.requests[0]!.url).toBe('/work/v1/chat/completions');
    expect(server.requests[0]!.json.model).toBe('work-model');
  });

  it('--profile beats DESCRIBE_IMAGE_PROFILE', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      profiles: { a: { model: 'model-a' }, b: { model: 'model-b' } },
    });
    await run(['--profile', 'b', CAT], config, { env: { DESCRIBE_IMAGE_PROFILE: 'a' } });
    expect(server.requests[0]!.json.model).toBe('model-b');
  });

  it('an unknown profile is exit 2 listing the known ones; nothing is sent', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      profiles: { work: {}, local: { provider: 'ollama' } },
    });
    for (const [args, env] of [
      [['--profile', 'hoem'], {}],
      [[], { DESCRIBE_IMAGE_PROFILE: 'hoem' }],
    ] as [string[], Record<string, string>][]) {
      const r = await run([...args, CAT], config, { env });
      expect(r.code).toBe(2);
      const line = errorLine(r.stderr);
      expect(line).toContain('"hoem"');
      expect(line).toContain('work, local');
    }
    expect(server.requests).toHaveLength(0);
  });

  it('a profile with another provider inherits neither the base URL, the key nor the model of the top level', async () => {
    const server = await anyPathServer((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'served-model' }] }));
        return;
      }
      answer(req, res, { text: 'local answer', model: 'served-model' });
    });
    const config = await writeConfig({
      baseUrl: `${server.origin}/top/v1`,
      apiKey: 'sk-top-secret-never-to-vllm-0001',
      model: 'top-model',
      detail: 'low',
      profiles: { local: { provider: 'vllm', baseUrl: `${server.origin}/local/v1` } },
    });
    const r = await run(['--profile', 'local', CAT], config);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('local answer\n');
    expect(server.requests.map((q) => `${q.method} ${q.url}`)).toEqual([
      'GET /local/v1/models',
      'POST /local/v1/chat/completions',
    ]);
    for (const req of server.requests) {
      expect(req.headers.authorization).toBeUndefined();
      expect(JSON.stringify(req.headers)).not.toContain('sk-top-secret');
    }
    expect(chat(server).json.model).toBe('served-model');
    // Request defaults do carry over.
    expect(imageDetail(chat(server))).toBe('low');
  });

  it('a profile without a provider of its own inherits the top level key', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      apiKey: 'sk-top-shared-000000000001',
      profiles: { cheap: { model: 'gpt-4o-mini' } },
    });
    const r = await run(['--profile', 'cheap', CAT], config);
    expect(r.code).toBe(0);
    expect(server.requests[0]!.headers.authorization).toBe('Bearer sk-top-shared-000000000001');
    expect(server.requests[0]!.json.model).toBe('gpt-4o-mini');
  });
});

describe('a broken config file', () => {
  it('invalid JSON is exit 2 naming the file; nothing is sent', async () => {
    const server = await anyPathServer();
    const config = await writeConfig(`{ "baseUrl": "${server.baseUrl}", }`);
    const r = await run(['--base-url', server.baseUrl, CAT], config);
    expect(r.code).toBe(2);
    const line = errorLine(r.stderr);
    expect(line).toContain(config);
    expect(line).toMatch(/not valid JSON/);
    expect(server.requests).toHaveLength(0);
  });

  it('a value of the wrong type is exit 2 naming the file and the key', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({ baseUrl: server.baseUrl, maxTokens: 'lots' });
    const r = await run([CAT], config);
    expect(r.code).toBe(2);
    const line = errorLine(r.stderr);
    expect(line).toContain(config);
    expect(line).toContain('"maxTokens"');
    expect(server.requests).toHaveLength(0);
  });

  it('a wrong type inside a profile is exit 2 too, even when the profile is not used', async () => {
    const config = await writeConfig({ profiles: { x: { detail: 'ultra' } } });
    const r = await run(['--print-config'], config);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toContain('profile "x"');
  });

  it('--print-config reports it the same way', async () => {
    const config = await writeConfig('[1, 2, 3]');
    const r = await run(['--print-config'], config);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(errorLine(r.stderr)).toContain(config);
  });

  it('unknown keys are warnings; the run goes on', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      modle: 'gpt-4o',
      profiles: { p: { temprature: 1 } },
    });
    const r = await run(['--profile', 'p', CAT], config);
    expect(r.code).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('describe-image: warning: '));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('"modle"');
    expect(warnings[1]).toContain('"temprature"');
    expect(server.requests).toHaveLength(1);
  });

  it('a file holding a key with mode 0644 warns naming chmod 600, without showing the key', async () => {
    const server = await anyPathServer();
    const key = 'sk-readable-by-others-0000000000000ABCD';
    const config = await writeConfig({ baseUrl: server.baseUrl, apiKey: key }, 0o644);
    const r = await run([CAT], config);
    expect(r.code).toBe(0);
    const warning = r.stderr.split('\n').find((l) => l.startsWith('describe-image: warning: '));
    expect(warning).toContain(`chmod 600 '${config}'`);
    expect(r.stderr + r.stdout).not.toContain(key);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${key}`);
  });

  it('no such warning at mode 0600, nor at 0644 without a key', async () => {
    const server = await anyPathServer();
    const a = await writeConfig({ baseUrl: server.baseUrl, apiKey: 'sk-private-0000000000001' });
    expect((await run([CAT], a)).stderr).not.toContain('warning');
    const b = await writeConfig({ baseUrl: server.baseUrl }, 0o644);
    expect((await run([CAT], b)).stderr).not.toContain('warning');
  });
});

// ---------------------------------------------------------------------------------------------

describe('--print-config', () => {
  const KEY = 'sk-proj-PRINTCONFIG-abcdefghijklmnopqrstuvwxyz0123456789-Zq9X';
  const PARTS = [KEY, KEY.slice(0, -4), KEY.slice(0, 16), 'abcdefghijklmnopqrstuvwxyz'];

  function expectNoKey(text: string): void {
    for (const part of PARTS) expect(text).not.toContain(part);
  }

  /** The `setting  value  (source)` line of the text output. */
  function row(stdout: string, setting: string): string {
    const line = stdout.split('\n').find((l) => l.startsWith(`${setting} `));
    if (!line) throw new Error(`no ${setting} line in:\n${stdout}`);
    return line;
  }

  const cases: {
    name: string;
    config: object;
    args: string[];
    env: Record<string, string>;
    source: string;
  }[] = [
    {
      name: 'a key from the environment',
      config: {},
      args: [],
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
      source: '$DESCRIBE_IMAGE_API_KEY',
    },
    {
      name: 'a key from a profile',
      config: { profiles: { work: { apiKey: KEY } } },
      args: ['--profile', 'work'],
      env: {},
      source: 'profile work',
    },
    {
      name: 'a key from the config file',
      config: { apiKey: KEY },
      args: [],
      env: {},
      source: 'config file',
    },
    {
      name: "a key from a profile's apiKeyEnv",
      config: { profiles: { work: { apiKeyEnv: 'MY_WORK_KEY' } } },
      args: ['--profile', 'work'],
      env: { MY_WORK_KEY: KEY },
      source: '$MY_WORK_KEY',
    },
  ];

  it.each(cases)('$name: only its last 4 characters, and where it came from', async (c) => {
    const config = await writeConfig(c.config);
    const r = await run(['--print-config', ...c.args], config, { env: c.env });
    expect(r.code).toBe(0);
    expectNoKey(r.stdout);
    expectNoKey(r.stderr);
    expect(row(r.stdout, 'apiKey')).toMatch(
      new RegExp(`^apiKey\\s+…Zq9X\\s+\\(${c.source.replace('$', '\\$')}\\)$`),
    );
  });

  it.each(cases)('$name, with --json', async (c) => {
    const config = await writeConfig(c.config);
    const r = await run(['--print-config', '--json', ...c.args], config, { env: c.env });
    expect(r.code).toBe(0);
    expectNoKey(r.stdout);
    expectNoKey(r.stderr);
    const parsed = JSON.parse(r.stdout);
    expect(parsed.apiKey).toEqual({ value: '…Zq9X', source: c.source });
  });

  it('a key from --api-key-file is redacted too', async () => {
    await writeFile(path.join(dir, 'long-key.txt'), `${KEY}\n`);
    const r = await run(
      ['--print-config', '--api-key-file', 'long-key.txt'],
      await freshConfigPath(),
    );
    expect(r.code).toBe(0);
    expectNoKey(r.stdout);
    expect(row(r.stdout, 'apiKey')).toContain('…Zq9X');
    expect(row(r.stdout, 'apiKey')).toContain('(--api-key-file long-key.txt)');
  });

  it('names every setting and where it comes from', async () => {
    const config = await writeConfig({
      model: 'top-model',
      detail: 'high',
      prices: { 'top-model': { input: 1, output: 2 } },
      profiles: { work: { maxTokens: 300, apiKey: KEY } },
    });
    const r = await run(
      ['--print-config', '--profile', 'work', '--base-url', 'http://127.0.0.1:9/v1'],
      config,
      {
        env: { DESCRIBE_IMAGE_MODEL: 'env-model' },
      },
    );
    expect(r.code).toBe(0);
    expectNoKey(r.stdout);
    expect(row(r.stdout, 'config file')).toContain(config);
    expect(row(r.stdout, 'config file')).toContain('(found)');
    expect(row(r.stdout, 'profile')).toMatch(/work\s+\(--profile\)$/);
    expect(row(r.stdout, 'provider')).toMatch(/maxtoken \(maxtoken\.io\)\s+\(default\)$/);
    expect(row(r.stdout, 'baseUrl')).toMatch(/http:\/\/127\.0\.0\.1:9\/v1\s+\(--base-url\)$/);
    expect(row(r.stdout, 'model')).toMatch(/env-model\s+\(\$DESCRIBE_IMAGE_MODEL\)$/);
    expect(row(r.stdout, 'apiKey')).toMatch(/…Zq9X\s+\(profile work\)$/);
    expect(row(r.stdout, 'detail')).toMatch(/high\s+\(config file\)$/);
    expect(row(r.stdout, 'maxTokens')).toMatch(/300\s+\(profile work\)$/);
    expect(row(r.stdout, 'prices')).toContain('top-model');
  });

  it('--json: valid JSON, a value and a source for every setting', async () => {
    const config = await writeConfig({ apiKey: KEY, detail: 'low' });
    const r = await run(['--print-config', '--json', '--provider', 'openai'], config, {
      env: { OPENAI_API_KEY: 'sk-openai-env-key-0000000000009876' },
    });
    expect(r.code).toBe(0);
    expectNoKey(r.stdout);
    expect(r.stdout).not.toContain('sk-openai-env-key');
    const parsed = JSON.parse(r.stdout) as Record<string, { value: unknown; source: unknown }>;
    for (const setting of [
      'config file',
      'profile',
      'provider',
      'baseUrl',
      'model',
      'apiKey',
      'keyHeader',
      'detail',
      'maxTokens',
    ]) {
      expect(parsed[setting], setting).toBeDefined();
      expect(Object.keys(parsed[setting]!).sort()).toEqual(['source', 'value']);
      expect(typeof parsed[setting]!.source).toBe('string');
    }
    expect(parsed.provider).toEqual({ value: 'openai (OpenAI)', source: '--provider' });
    expect(parsed.baseUrl).toEqual({
      value: 'https://api.openai.com/v1',
      source: 'default for openai',
    });
    // The file's key belongs to the default provider, not to openai.
    expect(parsed.apiKey).toEqual({ value: '…9876', source: '$OPENAI_API_KEY' });
    expect(parsed.detail).toEqual({ value: 'low', source: 'config file' });
    expect(parsed['config file']).toEqual({ value: config, source: 'found' });
  });

  it('with no config file: says it is optional; no key: says how to set one', async () => {
    const config = await freshConfigPath();
    const r = await run(['--print-config', '--json'], config);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout);
    expect(parsed['config file']).toEqual({ value: config, source: 'not found; it is optional' });
    expect(parsed.apiKey).toEqual({ value: '(none)', source: 'set one with --save-key' });
  });

  it('Azure: shows the api-version and the api-key header', async () => {
    const r = await run(
      ['--print-config', '--json', '--provider', 'azure', '-m', 'dep'],
      await freshConfigPath(),
      {
        env: {
          AZURE_OPENAI_ENDPOINT: 'https://contoso.openai.azure.com',
          AZURE_OPENAI_API_KEY: KEY,
        },
      },
    );
    expect(r.code).toBe(0);
    expectNoKey(r.stdout);
    const parsed = JSON.parse(r.stdout);
    expect(parsed.apiVersion).toEqual({ value: '2024-10-21', source: 'default' });
    expect(parsed.keyHeader.value).toBe('api-key');
    expect(parsed.baseUrl.value).toBe('https://contoso.openai.azure.com/openai/deployments/dep');
    expect(parsed.apiKey).toEqual({ value: '…Zq9X', source: '$AZURE_OPENAI_API_KEY' });
  });

  it('sends nothing and needs no image', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({ baseUrl: server.baseUrl, apiKey: KEY });
    const r = await run(['--print-config'], config);
    expect(r.code).toBe(0);
    expect(server.requests).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('--save-key', () => {
  const KEY = 'sk-saved-via-stdin-0123456789abcdef-W7kP';

  function expectNotEchoed(r: { stdout: string; stderr: string }): void {
    for (const part of [KEY, KEY.slice(0, -4), KEY.slice(0, 12)]) {
      expect(r.stdout).not.toContain(part);
      expect(r.stderr).not.toContain(part);
    }
  }

  it('stores a piped key in a new config file (0600, its folders created), showing only its last 4 characters', async () => {
    const folder = path.join(dir, `save${++n}`, 'deep', 'er');
    const config = path.join(folder, 'config.json');
    const r = await run(['--save-key'], config, { stdin: `${KEY}\n` });
    expect(r.code).toBe(0);
    expectNotEchoed(r);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('…W7kP');
    expect(r.stderr).toContain(config);
    expect(JSON.parse(await readFile(config, 'utf8'))).toEqual({ apiKey: KEY });
    expect((await stat(config)).mode & 0o777).toBe(0o600);
    expect((await stat(folder)).mode & 0o077).toBe(0);
  });

  it('keeps the file’s other settings', async () => {
    const before = {
      provider: 'maxtoken',
      model: 'gpt-4o-mini',
      apiKey: 'sk-old-key-0000000000000',
      profiles: { local: { provider: 'ollama', model: 'llava' } },
    };
    const config = await writeConfig(before, 0o644);
    const r = await run(['--save-key'], config, { stdin: KEY });
    expect(r.code).toBe(0);
    expectNotEchoed(r);
    expect(JSON.parse(await readFile(config, 'utf8'))).toEqual({ ...before, apiKey: KEY });
    expect((await stat(config)).mode & 0o777).toBe(0o600);
  });

  it('with --profile NAME, stores it in profiles.NAME.apiKey', async () => {
    const config = await writeConfig({
      apiKey: 'sk-top-0000000000000000',
      profiles: { work: { model: 'm' } },
    });
    const r = await run(['--save-key', '--profile', 'work'], config, { stdin: `  ${KEY}  \n` });
    expect(r.code).toBe(0);
    expectNotEchoed(r);
    expect(r.stderr).toContain('profile work');
    expect(JSON.parse(await readFile(config, 'utf8'))).toEqual({
      apiKey: 'sk-top-0000000000000000',
      profiles: { work: { model: 'm', apiKey: KEY } },
    });
  });

  it('afterwards a run uses it: the server receives it as Bearer', async () => {
    const server = await anyPathServer();
    const config = await freshConfigPath();
    expect((await run(['--save-key'], config, { stdin: KEY })).code).toBe(0);
    const r = await run(['--base-url', server.baseUrl, CAT], config);
    expect(r.code).toBe(0);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(r.stderr).not.toContain('warning');
    expectNotEchoed(r);
  });

  it('a key saved in a profile is used with that profile', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({ baseUrl: server.baseUrl });
    expect((await run(['--save-key', '--profile', 'work'], config, { stdin: KEY })).code).toBe(0);
    await run(['--profile', 'work', CAT], config);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    await run([CAT], config);
    expect(server.requests[1]!.headers.authorization).toBeUndefined();
  });

  it('uses $XDG_CONFIG_HOME/describe-image/config.json when DESCRIBE_IMAGE_CONFIG is unset', async () => {
    const xdg = path.join(dir, `xdg${++n}`);
    await mkdir(xdg);
    const r = await runCli(['--save-key'], {
      cwd: dir,
      stdin: KEY,
      env: { XDG_CONFIG_HOME: xdg },
    });
    expect(r.code).toBe(0);
    const file = path.join(xdg, 'describe-image', 'config.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ apiKey: KEY });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it.each([
    ['an empty key', ''],
    ['a blank line', '  \n\n'],
  ])('%s is exit 2 and writes nothing', async (_name, stdin) => {
    const config = await freshConfigPath();
    const r = await run(['--save-key'], config, { stdin });
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toMatch(/no key/);
    await expect(stat(config)).rejects.toThrow();
  });

  it('a key with spaces inside is exit 2 and writes nothing', async () => {
    const config = await freshConfigPath();
    const r = await run(['--save-key'], config, { stdin: 'sk-one sk-two-0000000\n' });
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('sk-two-0000000');
    await expect(stat(config)).rejects.toThrow();
  });

  it('with images: exit 2', async () => {
    const config = await freshConfigPath();
    const r = await run(['--save-key', CAT], config, { stdin: KEY });
    expect(r.code).toBe(2);
    await expect(stat(config)).rejects.toThrow();
  });

  it('a config file that is not valid JSON is left alone: exit 2', async () => {
    const text = '{"model": "gpt-4o",,}';
    const config = await writeConfig(text);
    const r = await run(['--save-key'], config, { stdin: KEY });
    expect(r.code).toBe(2);
    expectNotEchoed(r);
    expect(errorLine(r.stderr)).toContain(config);
    expect(await readFile(config, 'utf8')).toBe(text);
  });
});

// ---------------------------------------------------------------------------------------------

describe('cost', () => {
  it('the cost line comes after the token line (gpt-4o-2024-08-06, 1,250 in, 89 out)', async () => {
    const server = await anyPathServer();
    const r = await run(['--base-url', server.baseUrl, CAT], await freshConfigPath());
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`${USAGE_LINE}\n${COST_LINE}\n`);
  });

  it('the price is looked up for the model the server says answered', async () => {
    const server = await anyPathServer(okHandler({ model: 'gpt-4o-mini-2024-07-18' }));
    const r = await run(
      ['--base-url', server.baseUrl, '-m', 'gpt-4o-mini', CAT],
      await freshConfigPath(),
    );
    expect(r.stderr).toBe(`${USAGE_LINE}\ncost: ~$0.0002 (estimate: $0.15/M in, $0.60/M out)\n`);
  });

  it('no cost line for a model without a price', async () => {
    const server = await anyPathServer(okHandler({ model: 'llava:13b' }));
    const r = await run(
      ['--base-url', server.baseUrl, '-m', 'llava:13b', CAT],
      await freshConfigPath(),
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`${USAGE_LINE}\n`);
  });

  it('no usage, no cost line', async () => {
    const server = await anyPathServer(okHandler({ usage: null }));
    const r = await run(['--base-url', server.baseUrl, CAT], await freshConfigPath());
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('-q hides it', async () => {
    const server = await anyPathServer();
    const r = await run(['-q', '--base-url', server.baseUrl, CAT], await freshConfigPath());
    expect(r.stderr).toBe('');
  });

  it('a cost the server reports (usage.cost) is shown as reported, whatever the provider', async () => {
    const server = await anyPathServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (extra: object) =>
        `data: ${JSON.stringify({ id: 'gen-1', model: 'openai/gpt-4o', object: 'chat.completion.chunk', ...extra })}\n\n`;
      res.end(
        chunk({ choices: [{ index: 0, delta: { content: 'Hi.' }, finish_reason: null }] }) +
          chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
          chunk({
            choices: [],
            usage: { prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339, cost: 0.0031 },
          }) +
          'data: [DONE]\n\n',
      );
    });
    const r = await run(['--base-url', server.baseUrl, CAT], await freshConfigPath());
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`${USAGE_LINE}\ncost: $0.0031 (reported by the server)\n`);
  });

  it('config prices override the built-in table', async () => {
    const server = await anyPathServer();
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      prices: { 'gpt-4o-2024-08-06': { input: 5, output: 20 } },
    });
    const r = await run([CAT], config);
    expect(r.code).toBe(0);
    // 1,250 × 5 + 89 × 20 = 8,030 millionths of a dollar.
    expect(r.stderr).toBe(`${USAGE_LINE}\ncost: ~$0.0080 (estimate: $5.00/M in, $20.00/M out)\n`);
  });

  it('config prices add models; a profile’s prices beat the top level’s', async () => {
    const server = await anyPathServer(okHandler({ model: 'llava:13b' }));
    const config = await writeConfig({
      baseUrl: server.baseUrl,
      model: 'llava:13b',
      prices: { 'llava:13b': { input: 1, output: 2 } },
      profiles: { dear: { prices: { 'llava:13b': { input: 100, output: 200 } } } },
    });
    const cheap = await run([CAT], config);
    expect(cheap.stderr).toBe(
      `${USAGE_LINE}\ncost: ~$0.0014 (estimate: $1.00/M in, $2.00/M out)\n`,
    );
    const dear = await run(['--profile', 'dear', CAT], config);
    expect(dear.stderr).toBe(
      `${USAGE_LINE}\ncost: ~$0.14 (estimate: $100.00/M in, $200.00/M out)\n`,
    );
  });

  it('--json records carry cost; none for an unknown model', async () => {
    const server = await anyPathServer();
    const r = await run(['--base-url', server.baseUrl, '--json', CAT], await freshConfigPath());
    expect(r.code).toBe(0);
    const record = JSON.parse(r.stdout);
    expect(record.cost).toBeCloseTo(0.004015, 10);
    const unknown = await anyPathServer(okHandler({ model: 'llava' }));
    const u = await run(
      ['--base-url', unknown.baseUrl, '-m', 'llava', '--json', CAT],
      await freshConfigPath(),
    );
    expect('cost' in JSON.parse(u.stdout)).toBe(false);
  });

  it('a structured answer asked twice costs both requests', async () => {
    let i = 0;
    const server = await anyPathServer((req, res) => {
      answer(req, res, { text: i++ === 0 ? 'not json' : '{"caption": "A cat."}' });
    });
    const r = await run(
      ['--base-url', server.baseUrl, '--json', '--preset', 'caption', CAT],
      await freshConfigPath(),
    );
    expect(server.requests).toHaveLength(2);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).cost).toBeCloseTo(0.00803, 10);
  });

  it('batch: each record carries its cost, the summary adds them up', async () => {
    const server = await anyPathServer();
    const r = await run(['--base-url', server.baseUrl, '--json', A, B], await freshConfigPath());
    expect(r.code).toBe(0);
    const records = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, any>);
    expect(records).toHaveLength(2);
    for (const record of records) expect(record.cost).toBeCloseTo(0.004015, 10);
    expect(r.stderr).toContain('tokens: 2,500 in · 178 out · 2,678 total · cost ~$0.0080');
  });

  it('batch: an answer from a model without a price makes the total a lower bound', async () => {
    // One request at a time: the first is answered by a model whose price is unknown.
    let calls = 0;
    const server = await anyPathServer((req, res) => {
      answer(req, res, { model: calls++ === 0 ? 'llava' : 'gpt-4o-2024-08-06' });
    });
    const r = await run(['--base-url', server.baseUrl, '-c', '1', A, B], await freshConfigPath());
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('tokens: 2,500 in · 178 out · 2,678 total · cost ≥ $0.0040');
  });

  it('--dry-run shows the estimated input cost of the images, and needs no key', async () => {
    const config = await freshConfigPath();
    // A 64×48 image with gpt-4o: 85 + 170 (one tile) = 255 tokens at $2.50/M.
    const auto = await run(['--dry-run', 'cat.png'], config);
    expect(auto.code).toBe(0);
    expect(auto.stderr).toContain(
      "dry run: 1 request not sent · estimated image tokens: ~255 (plus the prompt's) · estimated input cost ~$0.0006 for the images",
    );
    // detail low: 85 tokens.
    const low = await run(['--dry-run', '--detail', 'low', 'a.png', 'b.png'], config);
    expect(low.code).toBe(0);
    expect(low.stderr).toContain('estimated image tokens: ~170');
    expect(low.stderr).toContain('estimated input cost ~$0.0004 for the images');
    // A model whose price is unknown: no cost.
    const unknown = await run(['--dry-run', '-m', 'llava', 'cat.png'], config);
    expect(unknown.code).toBe(0);
    expect(unknown.stderr).not.toContain('cost');
  });

  it('--dry-run uses config prices', async () => {
    const config = await writeConfig({
      prices: { 'gpt-4o-2024-08-06': { input: 100, output: 100 } },
    });
    const r = await run(['--dry-run', 'cat.png'], config);
    // 255 × 100 / 1e6 = $0.0255.
    expect(r.stderr).toContain('estimated input cost ~$0.03 for the images');
  });
});
