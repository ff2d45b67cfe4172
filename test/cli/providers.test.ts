/**
 * End to end, providers: the spawned CLI with --provider against a loopback server that
 * replays each provider's recorded traffic (test/fixtures) or documented habits: Azure's URL,
 * header and stream, OpenRouter's keep-alive comments, credits and reported cost, vLLM's
 * legacy errors, Ollama's image limits, Gemini's strictness, llama.cpp's extra fields.
 */
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCliWithConfig, type CliOptions } from '../helpers/cli.js';
import { makeImage, tempDir } from '../helpers/images.js';
import { answer, errorHandler, okHandler, serverPool } from '../helpers/server.js';
import type { Handler, RecordedRequest } from '../helpers/server.js';

const ERROR_PREFIX = 'describe-image: error: ';
// An image by URL, for providers that get URLs as they are: nothing to prepare locally.
const CAT = 'https://example.com/cat.png';

let dir: string;
let catPng: Buffer;
const serve = serverPool();

function run(args: string[], opts: CliOptions = {}) {
  return runCliWithConfig(args, dir, path.join(dir, 'no-config.json'), opts);
}

function fixtureText(name: string): string {
  return readFileSync(path.join(ROOT, 'test/fixtures', name), 'utf8');
}

/** The one error line on stderr. */
function errorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.startsWith(ERROR_PREFIX));
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

function imageUrls(req: RecordedRequest): string[] {
  const user = (req.json.messages as { role: string; content: any[] }[]).find(
    (m) => m.role === 'user',
  )!;
  return user.content
    .filter((p: { type: string }) => p.type === 'image_url')
    .map((p: { image_url: { url: string } }) => p.image_url.url);
}

function imageParts(req: RecordedRequest): Record<string, unknown>[] {
  const user = (req.json.messages as { role: string; content: any[] }[]).find(
    (m) => m.role === 'user',
  )!;
  return user.content
    .filter((p: { type: string }) => p.type === 'image_url')
    .map((p: { image_url: Record<string, unknown> }) => p.image_url);
}

/** SSE framing for chunk objects (or raw lines), ending with [DONE]. */
function sse(chunks: (object | string)[], done = true): string {
  return (
    chunks.map((c) => `data: ${typeof c === 'string' ? c : JSON.stringify(c)}\n\n`).join('') +
    (done ? 'data: [DONE]\n\n' : '')
  );
}

function streamHandler(body: string): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(body);
  };
}

beforeAll(async () => {
  dir = await tempDir('describe-image-cli-providers-');
  catPng = await makeImage('png', { color: '#808080' });
  await writeFile(path.join(dir, 'cat.png'), catPng);
  await writeFile(path.join(dir, 'anim.gif'), await makeImage('gif', { color: '#ff8800' }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('azure', () => {
  const AZURE_KEY = 'azure-key-0123456789abcdef';
  const azureStream = sse(
    fixtureText('sse/vercel-ai_azure-text.chunks.jsonl')
      .split('\n')
      .filter((l) => l.trim() !== ''),
  );

  function azureEnv(origin: string, extra: Record<string, string> = {}) {
    return {
      AZURE_OPENAI_ENDPOINT: origin,
      AZURE_OPENAI_API_KEY: AZURE_KEY,
      // Never sent to Azure.
      OPENAI_API_KEY: 'sk-openai-must-not-be-sent',
      ...extra,
    };
  }

  it('the deployment URL, api-version, api-key header; the recorded stream is read', async () => {
    const server = await serve(streamHandler(azureStream));
    const r = await run(['--provider', 'azure', '-m', 'mydeploy', CAT], {
      env: azureEnv(server.origin),
    });
    expect(r.stderr).toBe('tokens: 15 in · 5 out · 20 total\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Hello World\n');
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/openai/deployments/mydeploy/chat/completions?api-version=2024-10-21');
    expect(req.headers['api-key']).toBe(AZURE_KEY);
    expect(req.headers.authorization).toBeUndefined();
    expect(JSON.stringify(req.headers)).not.toContain('sk-openai-must-not-be-sent');
    expect(req.json.model).toBe('mydeploy');
    expect(req.json.stream_options).toEqual({ include_usage: true });
  });

  it('with --no-stream, the same request shape and the answer', async () => {
    const server = await serve(okHandler({ text: 'A grey square.', model: 'gpt-4o' }));
    const r = await run(['--provider', 'azure', '-m', 'mydeploy', '--no-stream', CAT], {
      env: azureEnv(server.origin),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A grey square.\n');
    expect(server.requests[0]!.url).toBe(
      '/openai/deployments/mydeploy/chat/completions?api-version=2024-10-21',
    );
    expect('stream_options' in server.requests[0]!.json).toBe(false);
  });

  it('--api-version overrides the default and AZURE_OPENAI_API_VERSION', async () => {
    const server = await serve(streamHandler(azureStream));
    const r = await run(
      ['--provider', 'azure', '-m', 'mydeploy', '--api-version', '2025-04-01-preview', CAT],
      { env: azureEnv(server.origin, { AZURE_OPENAI_API_VERSION: '2024-06-01' }) },
    );
    expect(r.code).toBe(0);
    expect(server.requests[0]!.url).toBe(
      '/openai/deployments/mydeploy/chat/completions?api-version=2025-04-01-preview',
    );
  });

  it('AZURE_OPENAI_API_VERSION overrides the default', async () => {
    const server = await serve(streamHandler(azureStream));
    const r = await run(['--provider', 'azure', '-m', 'mydeploy', CAT], {
      env: azureEnv(server.origin, { AZURE_OPENAI_API_VERSION: '2024-06-01' }),
    });
    expect(r.code).toBe(0);
    expect(server.requests[0]!.url).toBe(
      '/openai/deployments/mydeploy/chat/completions?api-version=2024-06-01',
    );
  });

  it('a deployment URL as --base-url is used as it is', async () => {
    const server = await serve(streamHandler(azureStream));
    const r = await run(
      [
        '--provider',
        'azure',
        '-m',
        'mydeploy',
        '--base-url',
        `${server.origin}/openai/deployments/other-deploy`,
        CAT,
      ],
      // The Azure key goes to Azure's hosts or to the host of AZURE_OPENAI_ENDPOINT.
      { env: { AZURE_OPENAI_API_KEY: AZURE_KEY, AZURE_OPENAI_ENDPOINT: server.origin } },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Hello World\n');
    expect(server.requests[0]!.url).toBe(
      '/openai/deployments/other-deploy/chat/completions?api-version=2024-10-21',
    );
    expect(server.requests[0]!.headers['api-key']).toBe(AZURE_KEY);
  });

  it("the recorded content-filter error is exit 6 naming the content policy, quoting Azure's message", async () => {
    const server = await serve(
      errorHandler(
        400,
        JSON.parse(fixtureText('responses/azure_error_400_content_filter.reconstructed.json')),
        { 'apim-request-id': 'azure-req-42' },
      ),
    );
    const r = await run(['--provider', 'azure', '-m', 'mydeploy', CAT], {
      env: azureEnv(server.origin),
    });
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    const line = errorLine(r.stderr);
    expect(line).toMatch(/content policy/);
    expect(line).toContain("Azure OpenAI's content management policy");
    expect(line).toContain('azure-req-42');
    expect(server.requests).toHaveLength(1);
  });

  it('without -m: exit 2 asking for the deployment, nothing sent', async () => {
    const server = await serve();
    const r = await run(['--provider', 'azure', CAT], { env: azureEnv(server.origin) });
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toMatch(/deployment/);
    expect(server.requests).toHaveLength(0);
  });

  it('without an endpoint: exit 2 naming AZURE_OPENAI_ENDPOINT', async () => {
    const r = await run(['--provider', 'azure', '-m', 'd', CAT], {
      env: { AZURE_OPENAI_API_KEY: AZURE_KEY },
    });
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toContain('AZURE_OPENAI_ENDPOINT');
  });

  it('the key is redacted in --debug output', async () => {
    const server = await serve(streamHandler(azureStream));
    const r = await run(['--debug', '--provider', 'azure', '-m', 'mydeploy', CAT], {
      env: azureEnv(server.origin),
    });
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain(AZURE_KEY);
    expect(r.stderr).toContain('provider azure');
  });
});

// ---------------------------------------------------------------------------------------------

describe('openrouter', () => {
  const OR_KEY = 'sk-or-v1-0123456789abcdefOPENROUTER';
  const base = {
    id: 'gen-1234',
    provider: 'OpenAI',
    model: 'openai/gpt-4o-2024-08-06',
    object: 'chat.completion.chunk',
    created: 1,
  };
  const chunk = (delta: object, finish: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finish, native_finish_reason: finish }],
  });
  const usage = {
    prompt_tokens: 1250,
    completion_tokens: 89,
    total_tokens: 1339,
    cost: 0.0123,
    is_byok: false,
    prompt_tokens_details: { cached_tokens: 0 },
    cost_details: { upstream_inference_cost: null },
    completion_tokens_details: { reasoning_tokens: 0, image_tokens: 0 },
  };
  // OpenRouter sends SSE comments while the upstream provider is still thinking.
  const stream =
    ': OPENROUTER PROCESSING\n\n' +
    ': OPENROUTER PROCESSING\n\n' +
    sse([chunk({ role: 'assistant', content: '' })], false) +
    ': OPENROUTER PROCESSING\n\n' +
    sse([chunk({ content: 'A cat ' }), chunk({ content: 'on a mat.' })], false) +
    ': OPENROUTER PROCESSING\n\n' +
    sse([chunk({}, 'stop'), { ...base, choices: [], usage }]);

  it('keep-alive comments are ignored; the reported cost is shown as reported', async () => {
    const server = await serve(streamHandler(stream));
    const r = await run(['--provider', 'openrouter', '--base-url', server.baseUrl, CAT], {
      env: { OPENROUTER_API_KEY: OR_KEY },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat on a mat.\n');
    expect(r.stderr).toBe(
      'tokens: 1,250 in · 89 out · 1,339 total\ncost: $0.01 (reported by the server)\n',
    );
    expect(server.requests[0]!.json.model).toBe('openai/gpt-4o-2024-08-06');
  });

  it('a reported cost under a cent keeps four decimals, and --json carries it', async () => {
    const small = stream.replace('"cost":0.0123', '"cost":0.00042');
    const server = await serve(streamHandler(small));
    const r = await run(['--provider', 'openrouter', '--base-url', server.baseUrl, CAT], {
      env: { OPENROUTER_API_KEY: OR_KEY },
    });
    expect(r.stderr).toContain('cost: $0.0004 (reported by the server)');
    const json = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [
            { index: 0, message: { role: 'assistant', content: 'A cat.' }, finish_reason: 'stop' },
          ],
          usage: { ...usage, cost: 0.00042 },
        }),
      );
    });
    const j = await run(['--provider', 'openrouter', '--base-url', json.baseUrl, '--json', CAT], {
      env: { OPENROUTER_API_KEY: OR_KEY },
    });
    expect(j.code).toBe(0);
    const record = JSON.parse(j.stdout);
    expect(record.cost).toBe(0.00042);
    expect(record.usage.cost).toBe(0.00042);
  });

  it('OPENROUTER_API_KEY is the key for openrouter.ai; OPENAI_API_KEY and MAXTOKEN_API_KEY are not', async () => {
    const env = {
      OPENROUTER_API_KEY: OR_KEY,
      OPENAI_API_KEY: 'sk-openai-secret-not-for-openrouter',
      MAXTOKEN_API_KEY: 'sk-maxtoken-secret-not-for-openrouter',
    };
    const printed = await run(['--print-config', '--json', '--provider', 'openrouter'], { env });
    expect(printed.code).toBe(0);
    const parsed = JSON.parse(printed.stdout);
    expect(parsed.apiKey).toEqual({ value: `…${OR_KEY.slice(-4)}`, source: '$OPENROUTER_API_KEY' });
    expect(parsed.keySentTo.value).toBe('openrouter.ai');
    // Pointed at another host (this loopback server), none of the three is sent.
    const server = await serve(streamHandler(stream));
    const r = await run(['--provider', 'openrouter', '--base-url', server.baseUrl, CAT], { env });
    expect(r.code).toBe(0);
    const req = server.requests[0]!;
    expect(req.headers.authorization).toBeUndefined();
    const everything = JSON.stringify(req.headers) + req.body;
    for (const key of Object.values(env)) expect(everything).not.toContain(key);
  });

  it('with only OPENAI_API_KEY set, nothing is sent as a key (loopback needs none)', async () => {
    const server = await serve(streamHandler(stream));
    const r = await run(['--provider', 'openrouter', '--base-url', server.baseUrl, CAT], {
      env: { OPENAI_API_KEY: 'sk-openai-secret-not-for-openrouter' },
    });
    expect(r.code).toBe(0);
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(server.requests[0]!.headers)).not.toContain('sk-openai');
  });

  it('with only OPENAI_API_KEY set, the real OpenRouter is not contacted: exit 4 naming OPENROUTER_API_KEY', async () => {
    const r = await run(['--provider', 'openrouter', CAT], {
      env: { OPENAI_API_KEY: 'sk-openai-secret-not-for-openrouter' },
    });
    expect(r.code).toBe(4);
    const line = errorLine(r.stderr);
    expect(line).toContain('no API key for https://openrouter.ai/api/v1');
    // What to set, and why the key that is there was not used (not a hint to set it).
    expect(line).toContain('set OPENROUTER_API_KEY or DESCRIBE_IMAGE_API_KEY,');
    expect(line).toContain('$OPENAI_API_KEY is only sent to api.openai.com');
    expect(line).not.toContain('sk-openai-secret');
  });

  it('402 (no credits, numeric code) is exit 5, not retried', async () => {
    const server = await serve(
      errorHandler(402, {
        error: {
          code: 402,
          message:
            'This request requires more credits, or fewer max_tokens. You requested up to 16384 tokens, but can only afford 1093.',
        },
      }),
    );
    const r = await run(['--provider', 'openrouter', '--base-url', server.baseUrl, CAT], {
      env: { OPENROUTER_API_KEY: OR_KEY },
    });
    expect(r.code).toBe(5);
    const line = errorLine(r.stderr);
    expect(line).toContain('requires more credits');
    expect(line).toMatch(/402/);
    expect(server.requests).toHaveLength(1);
  });

  it('401 with a numeric code is exit 4', async () => {
    const server = await serve(
      errorHandler(401, { error: { code: 401, message: 'No auth credentials found' } }),
    );
    const r = await run(['--provider', 'openrouter', '--base-url', server.baseUrl, CAT], {
      env: { OPENROUTER_API_KEY: OR_KEY },
    });
    expect(r.code).toBe(4);
    expect(errorLine(r.stderr)).toContain('No auth credentials found');
    expect(r.stderr).not.toContain(OR_KEY);
  });

  it('an error chunk inside a 200 stream with a numeric code is read by that code', async () => {
    const body =
      ': OPENROUTER PROCESSING\n\n' +
      sse(
        [
          chunk({ role: 'assistant', content: '' }),
          {
            ...base,
            error: { code: 402, message: 'Insufficient credits' },
            choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
          },
        ],
        false,
      );
    const server = await serve(streamHandler(body));
    const r = await run(
      ['--provider', 'openrouter', '--base-url', server.baseUrl, '--retries', '0', CAT],
      { env: { OPENROUTER_API_KEY: OR_KEY } },
    );
    expect(r.code).toBe(5);
    expect(errorLine(r.stderr)).toContain('Insufficient credits');
  });
});

// ---------------------------------------------------------------------------------------------

describe('vllm', () => {
  it('the unwrapped legacy error body is exit 6 with its message', async () => {
    const body = JSON.parse(fixtureText('responses/vllm_error_legacy_pre_0.10.1.json'));
    const server = await serve(errorHandler(400, body));
    const r = await run(['--provider', 'vllm', '--base-url', server.baseUrl, '-m', 'qwen', CAT]);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(errorLine(r.stderr)).toContain(
      "This model's maximum context length is 32768 tokens. However, you requested 39197 tokens",
    );
  });

  it('the wrapped body of vLLM 0.10.1+ (integer code) is read the same way', async () => {
    const body = JSON.parse(fixtureText('responses/vllm_error_0.10.1_plus.json'));
    const server = await serve(errorHandler(400, body));
    const r = await run(['--provider', 'vllm', '--base-url', server.baseUrl, '-m', 'qwen', CAT]);
    expect(r.code).toBe(6);
    expect(errorLine(r.stderr)).toContain('maximum context length is 32768 tokens');
  });

  it('a legacy error object inside the stream is reported with its message', async () => {
    const body = JSON.parse(fixtureText('responses/vllm_error_legacy_pre_0.10.1.json'));
    const server = await serve(streamHandler(sse([body], false)));
    const r = await run([
      '--provider',
      'vllm',
      '--base-url',
      server.baseUrl,
      '-m',
      'qwen',
      '--retries',
      '0',
      CAT,
    ]);
    expect(r.code).toBe(6);
    expect(errorLine(r.stderr)).toContain('maximum context length is 32768 tokens');
  });

  it('stream_options is sent with stream: true only', async () => {
    const server = await serve(okHandler({ text: 'ok', model: 'qwen' }));
    const args = ['--provider', 'vllm', '--base-url', server.baseUrl, '-m', 'qwen', CAT];
    expect((await run(args)).code).toBe(0);
    expect((await run(['--no-stream', ...args])).code).toBe(0);
    expect((await run(['--json', ...args])).code).toBe(0);
    const [streamed, plain, json] = server.requests;
    expect(streamed!.json.stream).toBe(true);
    expect(streamed!.json.stream_options).toEqual({ include_usage: true });
    expect(plain!.json.stream).toBe(false);
    expect('stream_options' in plain!.json).toBe(false);
    expect(json!.json.stream).toBe(false);
    expect('stream_options' in json!.json).toBe(false);
  });

  it('with no -m, GET /v1/models and use the first id', async () => {
    const server = await serve((req, res) => {
      if (req.method === 'GET' && req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            object: 'list',
            data: [
              {
                id: 'Qwen/Qwen2.5-VL-7B-Instruct',
                object: 'model',
                owned_by: 'vllm',
                max_model_len: 32768,
              },
              { id: 'other-model', object: 'model', owned_by: 'vllm' },
            ],
          }),
        );
        return;
      }
      answer(req, res, { text: 'From Qwen.', model: 'Qwen/Qwen2.5-VL-7B-Instruct' });
    });
    const r = await run(['--provider', 'vllm', '--base-url', server.baseUrl, CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('From Qwen.\n');
    expect(server.requests.map((q) => `${q.method} ${q.url}`)).toEqual([
      'GET /v1/models',
      'POST /v1/chat/completions',
    ]);
    expect(server.requests[1]!.json.model).toBe('Qwen/Qwen2.5-VL-7B-Instruct');
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('VLLM_API_KEY, when set, is sent to /models and /chat/completions', async () => {
    const server = await serve((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'm1' }] }));
        return;
      }
      answer(req, res, { text: 'ok' });
    });
    const r = await run(['--provider', 'vllm', '--base-url', server.baseUrl, CAT], {
      env: { VLLM_API_KEY: 'vllm-token-123456' },
    });
    expect(r.code).toBe(0);
    for (const req of server.requests)
      expect(req.headers.authorization).toBe('Bearer vllm-token-123456');
  });

  it('a server that lists no models: exit 2 asking for --model', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [] }));
    });
    const r = await run(['--provider', 'vllm', '--base-url', server.baseUrl, CAT]);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toContain('--model');
    expect(server.requests).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('ollama', () => {
  const OLLAMA_URL_ERROR = {
    error: {
      message: 'image URLs are not currently supported, please use base64 encoded data instead',
      type: 'invalid_request_error',
      param: null,
    },
  };

  /** Like Ollama: image URLs are refused, usage only with include_usage. */
  const ollama: Handler = (req, res) => {
    if (imageUrls(req).some((u) => !u.startsWith('data:'))) {
      void errorHandler(400, OLLAMA_URL_ERROR)(req, res, undefined as never);
      return;
    }
    answer(req, res, { text: 'A llama.', model: 'llava:13b' });
  };

  it('a GIF is converted: never sent as image/gif', async () => {
    const server = await serve(ollama);
    const r = await run([
      '--provider',
      'ollama',
      '--base-url',
      server.baseUrl,
      '-m',
      'llava:13b',
      'anim.gif',
    ]);
    expect(r.code).toBe(0);
    const [url] = imageUrls(server.requests[0]!);
    expect(url).toMatch(/^data:image\/(png|jpeg|webp);base64,/);
    expect(url).not.toMatch(/^data:image\/gif/);
  });

  it('a PNG is sent as it is', async () => {
    const server = await serve(ollama);
    const r = await run([
      '--provider',
      'ollama',
      '--base-url',
      server.baseUrl,
      '-m',
      'llava',
      'cat.png',
    ]);
    expect(r.code).toBe(0);
    expect(imageUrls(server.requests[0]!)).toEqual([
      `data:image/png;base64,${catPng.toString('base64')}`,
    ]);
  });

  it('an http image URL is downloaded by the tool and sent as a data URL', async () => {
    const images = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': catPng.length });
      res.end(catPng);
    });
    const server = await serve(ollama);
    const r = await run(
      [
        '--provider',
        'ollama',
        '--base-url',
        server.baseUrl,
        '-m',
        'llava',
        `${images.origin}/photos/cat.png?size=small`,
      ],
      { env: { OLLAMA_API_KEY: 'ollama-key-0123456789' } },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A llama.\n');
    expect(images.requests).toHaveLength(1);
    expect(images.requests[0]!.method).toBe('GET');
    expect(images.requests[0]!.url).toBe('/photos/cat.png?size=small');
    // The download carries no credential.
    expect(images.requests[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(images.requests[0]!.headers)).not.toContain('ollama-key');
    expect(imageUrls(server.requests[0]!)).toEqual([
      `data:image/png;base64,${catPng.toString('base64')}`,
    ]);
  });

  it("with --no-download the URL is sent; Ollama's 400 gives exit 6 suggesting --download", async () => {
    const images = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(catPng);
    });
    const server = await serve(ollama);
    const url = `${images.origin}/cat.png`;
    const r = await run([
      '--provider',
      'ollama',
      '--base-url',
      server.baseUrl,
      '-m',
      'llava',
      '--no-download',
      url,
    ]);
    expect(r.code).toBe(6);
    expect(images.requests).toHaveLength(0);
    expect(imageUrls(server.requests[0]!)).toEqual([url]);
    const line = errorLine(r.stderr);
    expect(line).toContain('image URLs are not currently supported');
    expect(line).toContain('--download');
  });

  it('no key needed, none sent; usage comes because stream_options.include_usage was sent', async () => {
    const server = await serve(ollama);
    const r = await run([
      '--provider',
      'ollama',
      '--base-url',
      server.baseUrl,
      '-m',
      'llava',
      'cat.png',
    ]);
    expect(r.code).toBe(0);
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
    expect(server.requests[0]!.json.stream_options).toEqual({ include_usage: true });
    expect(r.stderr).toBe('tokens: 1,250 in · 89 out · 1,339 total\n');
  });

  it('the default base URL is localhost:11434 (shown by --print-config, no key needed)', async () => {
    const r = await run(['--provider', 'ollama', '--print-config', '--json']);
    expect(r.code).toBe(0);
    const config = JSON.parse(r.stdout);
    expect(config.baseUrl.value).toBe('http://localhost:11434/v1');
    expect(config.apiKey.source).toBe('not needed');
  });
});

// ---------------------------------------------------------------------------------------------

describe('gemini', () => {
  const GEMINI_KEY = 'AIzaSy-gemini-test-key-0123456789';
  const geminiError = (message: string, code = 400, status = 'INVALID_ARGUMENT') => [
    {
      error: {
        code,
        message,
        status,
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.BadRequest',
            fieldViolations: [{ description: message }],
          },
        ],
      },
    },
  ];

  /** Like Gemini's OpenAI endpoint: any field it does not know is a 400 with an array body. */
  const strictGemini: Handler = (req, res) => {
    const unknown: string[] = [];
    if ('stream_options' in req.json) unknown.push('stream_options');
    if (imageParts(req).some((p) => 'detail' in p)) unknown.push('detail');
    if (unknown.length > 0) {
      void errorHandler(
        400,
        geminiError(
          unknown
            .map((u) => `Invalid JSON payload received. Unknown name "${u}": Cannot find field.`)
            .join('\n'),
        ),
      )(req, res, undefined as never);
      return;
    }
    answer(req, res, { text: 'A Gemini answer.', model: 'gemini-2.0-flash' });
  };

  it('sends neither stream_options nor image_url.detail, even with --detail high', async () => {
    const server = await serve(strictGemini);
    const r = await run(
      ['--provider', 'gemini', '--base-url', server.baseUrl, '--detail', 'high', CAT],
      { env: { DESCRIBE_IMAGE_API_KEY: GEMINI_KEY } },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A Gemini answer.\n');
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect('stream_options' in req.json).toBe(false);
    expect(req.json.stream).toBe(true);
    expect(imageParts(req).every((p) => !('detail' in p))).toBe(true);
    expect(req.json.model).toBe('gemini-2.0-flash');
    expect(req.headers.authorization).toBe(`Bearer ${GEMINI_KEY}`);
  });

  it('a structured preset is accepted by the strict server too', async () => {
    const server = await serve((req, res) => {
      if ('stream_options' in req.json) {
        void errorHandler(400, geminiError('Unknown name "stream_options"'))(
          req,
          res,
          undefined as never,
        );
        return;
      }
      answer(req, res, { text: '{"caption": "A cat."}' });
    });
    const r = await run(
      ['--provider', 'gemini', '--base-url', server.baseUrl, '--preset', 'caption', CAT],
      {
        env: { GEMINI_API_KEY: GEMINI_KEY },
      },
    );
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.json.response_format.type).toBe('json_schema');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A cat.\n');
  });

  it('an error array body is reported with its message (exit 6)', async () => {
    const message = 'Invalid JSON payload received. Unknown name "frobnicate": Cannot find field.';
    const server = await serve(errorHandler(400, geminiError(message)));
    const r = await run(['--provider', 'gemini', '--base-url', server.baseUrl, CAT], {
      env: { GEMINI_API_KEY: GEMINI_KEY },
    });
    expect(r.code).toBe(6);
    expect(errorLine(r.stderr)).toContain(message);
    expect(r.stderr).not.toContain(GEMINI_KEY);
  });

  it('a 429 array body (RESOURCE_EXHAUSTED) is a rate limit, exit 5', async () => {
    const server = await serve(
      errorHandler(
        429,
        geminiError('Resource has been exhausted (e.g. check quota).', 429, 'RESOURCE_EXHAUSTED'),
      ),
    );
    const r = await run(
      ['--provider', 'gemini', '--base-url', server.baseUrl, '--retries', '0', CAT],
      {
        env: { GEMINI_API_KEY: GEMINI_KEY },
      },
    );
    expect(r.code).toBe(5);
    expect(errorLine(r.stderr)).toContain('Resource has been exhausted');
  });

  it('GOOGLE_API_KEY is used when GEMINI_API_KEY is not set; OPENAI_API_KEY never', async () => {
    const env = {
      GOOGLE_API_KEY: 'google-key-abcdef123456',
      OPENAI_API_KEY: 'sk-openai-nope-123456',
    };
    const r = await run(['--print-config', '--json', '--provider', 'gemini'], { env });
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout);
    expect(parsed.apiKey).toEqual({ value: '…3456', source: '$GOOGLE_API_KEY' });
    expect(parsed.keySentTo.value).toBe('generativelanguage.googleapis.com');
    const both = await run(['--print-config', '--json', '--provider', 'gemini'], {
      env: { ...env, GEMINI_API_KEY: GEMINI_KEY },
    });
    expect(JSON.parse(both.stdout).apiKey.source).toBe('$GEMINI_API_KEY');
  });

  it('another provider pointed at such a server drops stream_options after its 400 and succeeds', async () => {
    const server = await serve(strictGemini);
    const r = await run(['--base-url', server.baseUrl, '-m', 'gemini-2.0-flash', CAT]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A Gemini answer.\n');
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.json.stream_options).toEqual({ include_usage: true });
    expect('stream_options' in server.requests[1]!.json).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('llamacpp', () => {
  const base = {
    id: 'chatcmpl-llama',
    created: 1,
    model: 'gemma-3-4b-it-Q4_K_M.gguf',
    system_fingerprint: 'b5460-abc',
    object: 'chat.completion.chunk',
  };
  const chunk = (delta: object, finish: string | null = null, extra: object = {}) => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...extra,
  });
  const timings = {
    prompt_n: 273,
    prompt_ms: 412.5,
    prompt_per_token_ms: 1.51,
    prompt_per_second: 661.8,
    predicted_n: 12,
    predicted_ms: 180.2,
    predicted_per_token_ms: 15.0,
    predicted_per_second: 66.6,
  };
  const stream = sse([
    chunk({ role: 'assistant', content: null }),
    chunk({ reasoning_content: 'The user wants a description. ' }),
    chunk({ reasoning_content: 'It looks grey.' }),
    chunk({ content: 'A grey ' }),
    chunk({ content: 'square.' }),
    chunk({}, 'stop', {
      usage: { completion_tokens: 12, prompt_tokens: 273, total_tokens: 285 },
      timings,
    }),
  ]);

  it('usage on the finish chunk, timings and reasoning_content ignored: text is the content only', async () => {
    const server = await serve(streamHandler(stream));
    const r = await run([
      '--provider',
      'llamacpp',
      '--base-url',
      server.baseUrl,
      '-m',
      'gemma',
      'cat.png',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('A grey square.\n');
    expect(r.stderr).toBe('tokens: 273 in · 12 out · 285 total\n');
  });

  it('--json: the text excludes reasoning_content, the usage is the finish chunk’s', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [
            {
              index: 0,
              finish_reason: 'stop',
              message: {
                role: 'assistant',
                reasoning_content: 'Thinking about it.',
                content: 'A grey square.',
              },
            },
          ],
          usage: { completion_tokens: 12, prompt_tokens: 273, total_tokens: 285 },
          timings,
        }),
      );
    });
    const r = await run([
      '--provider',
      'llamacpp',
      '--base-url',
      server.baseUrl,
      '-m',
      'gemma',
      '--json',
      'cat.png',
    ]);
    expect(r.code).toBe(0);
    const record = JSON.parse(r.stdout);
    expect(record.text).toBe('A grey square.');
    expect(record.usage).toEqual({ completion_tokens: 12, prompt_tokens: 273, total_tokens: 285 });
    expect(record.model).toBe('gemma-3-4b-it-Q4_K_M.gguf');
  });

  it('an http image URL is downloaded for llama.cpp too', async () => {
    const images = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(catPng);
    });
    const server = await serve(streamHandler(stream));
    const r = await run([
      '--provider',
      'llamacpp',
      '--base-url',
      server.baseUrl,
      '-m',
      'gemma',
      `${images.origin}/cat.png`,
    ]);
    expect(r.code).toBe(0);
    expect(images.requests).toHaveLength(1);
    expect(imageUrls(server.requests[0]!)[0]).toMatch(/^data:image\/png;base64,/);
  });
});
