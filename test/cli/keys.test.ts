/**
 * End to end, where the key goes: a vendor's key variable only to that vendor, OpenAI when
 * its key is the only one, exit 4 saying what to set and why a key present was not used,
 * --print-config showing the host the key goes to and no URL secrets, every known secret
 * redacted, and an Azure deployment URL that needs no -m. The servers are on 127.0.0.1 and
 * each run has its own (absent) config file unless the test writes one.
 */
import { writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliWithConfig, type CliOptions } from '../helpers/cli.js';
import { tempDir } from '../helpers/images.js';
import { answer, errorHandler, serverPool } from '../helpers/server.js';
import type { Handler } from '../helpers/server.js';

const ERROR_PREFIX = 'describe-image: error: ';
const CAT = 'https://example.com/cat.png';
const MAXTOKEN_KEY = 'sk-maxtoken-VENDOR-0123456789abcdef';
const OPENAI_KEY = 'sk-openai-VENDOR-0123456789abcdef';
const NOTICE =
  'using OpenAI (https://api.openai.com/v1): $OPENAI_API_KEY is set and no maxtoken.io key is; ' +
  'to use maxtoken.io set MAXTOKEN_API_KEY or DESCRIBE_IMAGE_API_KEY, or choose a provider with --provider';

let dir: string;
const serve = serverPool();

function run(args: string[], opts: CliOptions = {}, config = 'no-config.json') {
  return runCliWithConfig(args, dir, path.join(dir, config), opts);
}

function errorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith(ERROR_PREFIX));
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

/** Answers with the headers it received, as the model's text: whatever was sent shows. */
const echoHeaders: Handler = (req, res) => {
  answer(req, res, { text: JSON.stringify(req.headers) });
};

beforeAll(async () => {
  dir = await tempDir('describe-image-cli-keys-');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a key variable named after a vendor goes only to that vendor', () => {
  it('MAXTOKEN_API_KEY is not sent to $DESCRIBE_IMAGE_BASE_URL elsewhere (this loopback server)', async () => {
    const server = await serve(echoHeaders);
    const r = await run([CAT], {
      env: { DESCRIBE_IMAGE_BASE_URL: server.baseUrl, MAXTOKEN_API_KEY: MAXTOKEN_KEY },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(server.requests[0]!.headers)).not.toContain(MAXTOKEN_KEY);
    expect(r.stdout).not.toContain(MAXTOKEN_KEY);
  });

  it('a remote base URL with only MAXTOKEN_API_KEY: exit 4, what to set and why, nothing sent', async () => {
    const r = await run(['--retries', '0', CAT], {
      env: {
        DESCRIBE_IMAGE_BASE_URL: 'https://api.example.invalid/v1',
        MAXTOKEN_API_KEY: MAXTOKEN_KEY,
      },
    });
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(errorLine(r.stderr)).toBe(
      `${ERROR_PREFIX}no API key for https://api.example.invalid/v1: set DESCRIBE_IMAGE_API_KEY, ` +
        'use --api-key-file, or store one with --save-key (a local server such as Ollama needs none); ' +
        '$MAXTOKEN_API_KEY is only sent to api.maxtoken.io',
    );
    expect(r.stderr).not.toContain(MAXTOKEN_KEY);
  });

  it('--print-config shows the host the key goes to', async () => {
    const r = await run(['--print-config'], { env: { MAXTOKEN_API_KEY: MAXTOKEN_KEY } });
    expect(r.code).toBe(0);
    const row = r.stdout.split('\n').find((l) => l.startsWith('keySentTo '));
    expect(row).toMatch(/^keySentTo\s+api\.maxtoken\.io\s+\(the host of baseUrl\)$/);
    const local = await run(['--print-config', '--json', '--base-url', 'http://127.0.0.1:9/v1'], {
      env: { MAXTOKEN_API_KEY: MAXTOKEN_KEY },
    });
    const parsed = JSON.parse(local.stdout);
    expect(parsed.keySentTo).toEqual({ value: '(no key is sent)', source: '' });
    expect(parsed.apiKey).toEqual({
      value: '(none)',
      source: '$MAXTOKEN_API_KEY is only sent to api.maxtoken.io; set one with --save-key',
    });
  });
});

describe('only OPENAI_API_KEY, no provider chosen: OpenAI, said once', () => {
  it('--print-config: OpenAI, its base URL, the key and its host; the notice once on stderr', async () => {
    const r = await run(['--print-config', '--json'], { env: { OPENAI_API_KEY: OPENAI_KEY } });
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout);
    expect(parsed.provider).toEqual({
      value: 'openai (OpenAI)',
      source: '$OPENAI_API_KEY, no maxtoken.io key',
    });
    expect(parsed.baseUrl.value).toBe('https://api.openai.com/v1');
    expect(parsed.apiKey).toEqual({ value: '…cdef', source: '$OPENAI_API_KEY' });
    expect(parsed.keySentTo.value).toBe('api.openai.com');
    expect(r.stderr).toBe(`${NOTICE}\n`);
  });

  it('with OPENAI_BASE_URL: the request and the key go there, the notice names it', async () => {
    const server = await serve((req, res) => answer(req, res, { text: 'A cat.' }));
    const r = await run([CAT], {
      env: { OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: server.baseUrl },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('A cat.\n');
    expect(server.requests[0]!.url).toBe('/v1/chat/completions');
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    const notices = r.stderr.split('\n').filter((l) => l.startsWith('using OpenAI'));
    expect(notices).toEqual([NOTICE.replace('https://api.openai.com/v1', server.baseUrl)]);
    expect(r.stderr).not.toContain(OPENAI_KEY);
    // -q: no notice.
    const quiet = await run(['-q', CAT], {
      env: { OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: server.baseUrl },
    });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
  });
});

describe('--print-config and the run never show a secret', () => {
  const BASE = 'https://alice:hunter2pw@api.example.com/v1?key=SECRETVALUE123&api-version=1';

  it('a base URL with user:password@ and ?key=: neither shown, in text or JSON', async () => {
    const text = await run(['--print-config', '--base-url', BASE]);
    expect(text.code).toBe(0);
    const json = await run(['--print-config', '--json', '--base-url', BASE]);
    expect(json.code).toBe(0);
    for (const out of [text.stdout + text.stderr, json.stdout + json.stderr]) {
      expect(out).not.toContain('hunter2pw');
      expect(out).not.toContain('SECRETVALUE123');
      expect(out).not.toContain('alice:');
    }
    expect(JSON.parse(json.stdout).baseUrl.value).toBe(
      'https://***:***@api.example.com/v1?key=***&api-version=1',
    );
  });

  it('--dry-run: the endpoint line has no secret parameter', async () => {
    const r = await run([
      '--dry-run',
      '--base-url',
      'https://api.example.com/v1?key=SECRETVALUE123',
      CAT,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')[0]).toMatch(/^POST https:\/\/api\.example\.com\/v1/);
    expect(r.stdout + r.stderr).not.toContain('SECRETVALUE123');
  });

  it('a server that echoes every key the run knows: none reaches stderr, --debug included', async () => {
    const secrets: Record<string, string> = {
      MAXTOKEN_API_KEY: 'sk-maxtoken-ECHOED-000001',
      OPENAI_API_KEY: 'sk-openai-ECHOED-000002',
      OPENROUTER_API_KEY: 'sk-or-ECHOED-000003',
      AZURE_OPENAI_API_KEY: 'azure-ECHOED-000004',
      GEMINI_API_KEY: 'gemini-ECHOED-000005',
      GOOGLE_API_KEY: 'google-ECHOED-000006',
      OLLAMA_API_KEY: 'ollama-ECHOED-000007',
      VLLM_API_KEY: 'vllm-ECHOED-000008',
      WORK_KEY: 'work-env-ECHOED-000009',
    };
    const fileKeys = ['cfg-top-ECHOED-000010', 'cfg-profile-ECHOED-000011'];
    const inUse = 'sk-describe-INUSE-000012';
    const everything = [...Object.values(secrets), ...fileKeys, inUse];
    await writeFile(
      path.join(dir, 'echo-config.json'),
      JSON.stringify({
        apiKey: fileKeys[0],
        profiles: { work: { apiKey: fileKeys[1], apiKeyEnv: 'WORK_KEY' } },
      }),
      { mode: 0o600 },
    );
    const server = await serve(
      errorHandler(401, { error: { message: `invalid key; known: ${everything.join(', ')}` } }),
    );
    for (const args of [[CAT], ['--debug', CAT], ['--json', CAT]]) {
      const r = await run(
        args,
        {
          env: {
            ...secrets,
            DESCRIBE_IMAGE_API_KEY: inUse,
            DESCRIBE_IMAGE_BASE_URL: server.baseUrl,
          },
        },
        'echo-config.json',
      );
      expect(r.code, args.join(' ')).toBe(4);
      expect(r.stderr).toContain('invalid key; known: ***, ***');
      for (const secret of everything) {
        expect(r.stderr, `${args.join(' ')}: ${secret}`).not.toContain(secret);
        expect(r.stdout, `${args.join(' ')}: ${secret}`).not.toContain(secret);
      }
    }
    // Only the key in use was sent.
    for (const req of server.requests) {
      expect(req.headers.authorization).toBe(`Bearer ${inUse}`);
      for (const secret of [...Object.values(secrets), ...fileKeys])
        expect(JSON.stringify(req.headers)).not.toContain(secret);
    }
  });
});

describe('Azure: a deployment URL as --base-url needs no -m', () => {
  it('the deployment is the model; the api-key header and api-version still go', async () => {
    const server = await serve((req, res) => answer(req, res, { text: 'A cat.' }));
    const deployment = `${server.origin}/openai/deployments/dep1`;
    const cases: Record<string, string>[] = [
      { DESCRIBE_IMAGE_API_KEY: 'azure-own-key-0123456789' },
      // Azure's own variable, to the host of AZURE_OPENAI_ENDPOINT.
      { AZURE_OPENAI_API_KEY: 'azure-env-key-0123456789', AZURE_OPENAI_ENDPOINT: server.origin },
    ];
    for (const [i, env] of cases.entries()) {
      const r = await run(['--provider', 'azure', '--base-url', deployment, CAT], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('A cat.\n');
      const req = server.requests[i]!;
      expect(req.url).toBe('/openai/deployments/dep1/chat/completions?api-version=2024-10-21');
      expect(req.headers['api-key']).toBe(Object.values(env)[0]);
      expect(req.headers.authorization).toBeUndefined();
      expect(req.json.model).toBe('dep1');
    }
  });
});
