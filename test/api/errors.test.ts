import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { apiErrorFromBody, parseErrorBody, parseErrorText } from '../../src/api/errors.js';
import {
  APIError,
  ConnectionError,
  DescribeImageError,
  ExitCode,
  exitCodeFor,
  InputError,
  MalformedResponseError,
  TimeoutError,
  UsageError,
} from '../../src/errors.js';

const RESPONSES = new URL('../fixtures/responses/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, RESPONSES), 'utf8');
const collapse = (text: string): string => text.replace(/\s+/g, ' ').trim();

interface ErrorFixture {
  status: number;
  exitCode: ExitCode;
  /** Words the headline or hint must contain. */
  mentions?: RegExp;
}

// The status comes from each file's name; vLLM errors are 400s.
const ERROR_FIXTURES: Record<string, ErrorFixture> = {
  'error_401_invalid_api_key.json': { status: 401, exitCode: ExitCode.AUTH, mentions: /API key/ },
  'error_404_model_not_found.json': {
    status: 404,
    exitCode: ExitCode.REJECTED,
    mentions: /model not found/,
  },
  'error_429_insufficient_quota.json': {
    status: 429,
    exitCode: ExitCode.RATE_LIMIT,
    mentions: /quota/,
  },
  'error_429_rate_limit_exceeded_tpm.reconstructed.json': {
    status: 429,
    exitCode: ExitCode.RATE_LIMIT,
    mentions: /rate limited/,
  },
  'error_400_unsupported_parameter_max_tokens.json': {
    status: 400,
    exitCode: ExitCode.REJECTED,
    mentions: /--max-completion-tokens/,
  },
  'error_400_invalid_image.reconstructed.json': {
    status: 400,
    exitCode: ExitCode.REJECTED,
    mentions: /image/,
  },
  'error_400_image_url_missing_data_prefix.reconstructed.json': {
    status: 400,
    exitCode: ExitCode.REJECTED,
  },
  'azure_error_400_content_filter.reconstructed.json': {
    status: 400,
    exitCode: ExitCode.REJECTED,
    mentions: /content policy/,
  },
  'vllm_error_legacy_pre_0.10.1.json': { status: 400, exitCode: ExitCode.REJECTED },
  'vllm_error_0.10.1_plus.json': { status: 400, exitCode: ExitCode.REJECTED },
};

/** Not an error body: Azure's placeholder first stream chunk. */
const NOT_ERRORS = ['azure_stream_first_chunk_prompt_filter_results.json'];

/** The server's own message, wherever the body keeps it. */
function serverMessage(body: unknown): string {
  const record = body as { error?: { message?: string }; message?: string };
  const message = record.error?.message ?? record.message;
  if (typeof message !== 'string') throw new Error('fixture without a message');
  return message;
}

function expectOneLine(error: APIError): void {
  expect(error.message).not.toMatch(/[\r\n]/);
}

describe('error bodies in test/fixtures/responses', () => {
  it('every file is either an error body with an expectation or a known non-error', () => {
    const files = readdirSync(RESPONSES).sort();
    expect([...Object.keys(ERROR_FIXTURES), ...NOT_ERRORS].sort()).toEqual(files);
  });

  describe.each(Object.entries(ERROR_FIXTURES))('%s', (name, fixture) => {
    const text = read(name);
    const json = JSON.parse(text) as unknown;
    const own = collapse(serverMessage(json));

    it(`maps HTTP ${fixture.status} to exit code ${fixture.exitCode} with the server's message`, () => {
      for (const body of [text, json]) {
        const error = apiErrorFromBody(fixture.status, body, {
          url: 'https://api.example.com/v1/chat/completions',
        });
        expect(error).toBeInstanceOf(APIError);
        expect(error).toBeInstanceOf(DescribeImageError);
        expect(error.exitCode).toBe(fixture.exitCode);
        expect(exitCodeFor(error)).toBe(fixture.exitCode);
        expect(error.status).toBe(fixture.status);
        expect(error.message).toContain(own);
        expect(error.message).toContain(`HTTP ${fixture.status}`);
        expectOneLine(error);
        if (fixture.mentions) expect(error.message).toMatch(fixture.mentions);
      }
    });

    it('parses the same info from the text and from the parsed JSON', () => {
      expect(parseErrorText(text)).toEqual(parseErrorBody(json));
      expect(parseErrorBody(json).message).toBe(serverMessage(json));
    });
  });

  it('the max_tokens error has a hint about --max-completion-tokens', () => {
    const error = apiErrorFromBody(
      400,
      read('error_400_unsupported_parameter_max_tokens.json'),
      {},
    );
    expect(error.hint).toMatch(/--max-completion-tokens/);
    expect(error.message).toContain(error.hint!);
  });

  it('keeps type, code and param from an OpenAI body', () => {
    const info = parseErrorBody(
      JSON.parse(read('error_400_unsupported_parameter_max_tokens.json')),
    );
    expect(info).toEqual({
      message:
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      type: 'invalid_request_error',
      code: 'unsupported_parameter',
      param: 'max_tokens',
    });
  });

  it('reads vLLM bodies, old and new, the same way (integer code as a string)', () => {
    const legacy = parseErrorBody(JSON.parse(read('vllm_error_legacy_pre_0.10.1.json')));
    const current = parseErrorBody(JSON.parse(read('vllm_error_0.10.1_plus.json')));
    expect(legacy).toEqual(current);
    expect(current.code).toBe('400');
    expect(current.type).toBe('BadRequestError');
  });

  it('the insufficient_quota 429 is out of quota, the TPM 429 is a rate limit', () => {
    const quota = apiErrorFromBody(429, read('error_429_insufficient_quota.json'), {});
    const rate = apiErrorFromBody(
      429,
      read('error_429_rate_limit_exceeded_tpm.reconstructed.json'),
      {},
    );
    expect(quota.message).toMatch(/quota/);
    expect(quota.message).not.toMatch(/rate limited/);
    expect(rate.message).toMatch(/rate limited/);
    expect(rate.message).not.toMatch(/out of quota/);
  });
});

describe('apiErrorFromBody by status', () => {
  const body = (message: string): string =>
    JSON.stringify({ error: { message, type: 'x', code: null } });

  it('403 with "insufficient balance" says insufficient balance', () => {
    const error = apiErrorFromBody(
      403,
      body('Your account has insufficient balance to call this model.'),
      {},
    );
    expect(error.exitCode).toBe(ExitCode.AUTH);
    expect(error.message).toMatch(/^insufficient balance/);
    expect(error.message).toContain('Your account has insufficient balance to call this model.');
  });

  it('any other 403 is a permission error with exit code 4', () => {
    const error = apiErrorFromBody(403, body('Project does not have access to model gpt-5'), {});
    expect(error.exitCode).toBe(ExitCode.AUTH);
    expect(error.message).toMatch(/permission denied/);
    expect(error.message).not.toMatch(/balance/);
  });

  it.each([
    [402, ExitCode.RATE_LIMIT],
    [408, ExitCode.SERVER],
    [409, ExitCode.SERVER],
    [413, ExitCode.REJECTED],
    [422, ExitCode.REJECTED],
    [500, ExitCode.SERVER],
    [502, ExitCode.SERVER],
    [503, ExitCode.SERVER],
    [504, ExitCode.SERVER],
  ])('HTTP %i → exit code %i', (status, code) => {
    const error = apiErrorFromBody(status, body('something went wrong'), {});
    expect(error.exitCode).toBe(code);
    expect(exitCodeFor(error)).toBe(code);
    expect(error.status).toBe(status);
    expect(error.message).toContain(`HTTP ${status}`);
    expect(error.message).toContain('something went wrong');
  });

  it('402 is out of quota', () => {
    expect(apiErrorFromBody(402, body('Payment required'), {}).message).toMatch(/out of quota/);
  });

  it('413 says the request is too large', () => {
    expect(apiErrorFromBody(413, '', {}).message).toMatch(/too large/);
  });

  it('404 without "model" points at the base URL', () => {
    const error = apiErrorFromBody(404, 'Not Found', {
      url: 'https://api.example.com/chat/completions',
    });
    expect(error.exitCode).toBe(ExitCode.REJECTED);
    expect(error.message).toContain('https://api.example.com/chat/completions');
    expect(error.message).toMatch(/--base-url/);
  });

  it('puts the request id in the message when there is one', () => {
    const error = apiErrorFromBody(500, body('boom'), { requestId: 'req_7f3a9c' });
    expect(error.message).toContain('req_7f3a9c');
    expect(error.requestId).toBe('req_7f3a9c');
    expect(apiErrorFromBody(500, body('boom'), {}).message).not.toContain('request id');
  });

  it('collapses a multi-line server message onto one line', () => {
    const error = apiErrorFromBody(400, body('line one\nline two\r\n\tline   three\n'), {});
    expectOneLine(error);
    expect(error.message).toContain('line one line two line three');
  });
});

describe('other body shapes', () => {
  it('Gemini: an array holding one error object', () => {
    const raw =
      '[{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT"}}]';
    expect(parseErrorText(raw)).toMatchObject({
      message: 'Request contains an invalid argument.',
      code: '400',
    });
    expect(parseErrorBody(JSON.parse(raw))).toMatchObject({
      message: 'Request contains an invalid argument.',
    });
    const error = apiErrorFromBody(400, raw, {});
    expect(error.exitCode).toBe(ExitCode.REJECTED);
    expect(error.message).toContain('Request contains an invalid argument.');
  });

  it('Gemini: RESOURCE_EXHAUSTED with HTTP 429 is a rate limit', () => {
    const raw = JSON.stringify([
      {
        error: {
          code: 429,
          message: 'Resource has been exhausted (e.g. check quota).',
          status: 'RESOURCE_EXHAUSTED',
        },
      },
    ]);
    const error = apiErrorFromBody(429, raw, {});
    expect(error.exitCode).toBe(ExitCode.RATE_LIMIT);
    expect(error.message).toContain('Resource has been exhausted (e.g. check quota).');
  });

  it('an empty array is an empty info', () => {
    expect(parseErrorBody([])).toEqual({});
  });

  it('Ollama: {"error": "text"}', () => {
    const raw = '{"error":"model \\"llava:13b\\" not found, try pulling it first"}';
    expect(parseErrorText(raw).message).toBe('model "llava:13b" not found, try pulling it first');
    const error = apiErrorFromBody(404, raw, {});
    expect(error.exitCode).toBe(ExitCode.REJECTED);
    expect(error.message).toMatch(/model not found/);
    expect(error.message).toContain('model "llava:13b" not found, try pulling it first');
  });

  it('FastAPI: {"detail": "text"}', () => {
    expect(parseErrorBody({ detail: 'Not authenticated' }).message).toBe('Not authenticated');
    const error = apiErrorFromBody(401, '{"detail":"Not authenticated"}', {});
    expect(error.exitCode).toBe(ExitCode.AUTH);
    expect(error.message).toContain('Not authenticated');
  });

  it('FastAPI: validation errors joined with "; "', () => {
    const raw = '{"detail":[{"loc":["body","model"],"msg":"a","type":"missing"},{"msg":"b"}]}';
    expect(parseErrorText(raw).message).toBe('a; b');
    const error = apiErrorFromBody(422, raw, {});
    expect(error.exitCode).toBe(ExitCode.REJECTED);
    expect(error.message).toContain('a; b');
  });

  it('an HTML page gives its title', () => {
    const html =
      '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
    expect(parseErrorText(html)).toEqual({ message: '502 Bad Gateway' });
    const error = apiErrorFromBody(502, html, {});
    expect(error.exitCode).toBe(ExitCode.SERVER);
    expect(error.message).toContain('502 Bad Gateway');
    expect(error.message).not.toContain('<');
    expectOneLine(error);
  });

  it('an HTML page without a title gives its h1, with entities decoded', () => {
    const html =
      '<!DOCTYPE html><html><body><h1>Service &amp; API unavailable</h1><p>details</p></body></html>';
    expect(parseErrorText(html).message).toBe('Service & API unavailable');
  });

  it('plain text is the message', () => {
    const text =
      'upstream connect error or disconnect/reset before headers. reset reason: overflow';
    expect(parseErrorText(text)).toEqual({ message: text });
    const error = apiErrorFromBody(503, text, {});
    expect(error.exitCode).toBe(ExitCode.SERVER);
    expect(error.message).toContain(text);
  });

  it('text that starts like JSON but is not JSON is kept as text', () => {
    expect(parseErrorText('{oops, not json')).toEqual({ message: '{oops, not json' });
  });

  it('an empty body gives a message with the headline only', () => {
    expect(parseErrorText('')).toEqual({});
    expect(parseErrorText('  \n ')).toEqual({});
    const error = apiErrorFromBody(500, '', {});
    expect(error.exitCode).toBe(ExitCode.SERVER);
    expect(error.message).toMatch(/HTTP 500/);
    expect(error.message).not.toMatch(/: *$|: \(/);
    expectOneLine(error);
  });

  it('non-object bodies give an empty info', () => {
    expect(parseErrorBody(null)).toEqual({});
    expect(parseErrorBody(42)).toEqual({});
    expect(parseErrorBody(undefined)).toEqual({});
  });

  it('messages never contain a newline, whatever the body', () => {
    const bodies: unknown[] = [
      'plain\ntext\nbody',
      '<html><head><title>\n  Gateway\n  Timeout\n</title></head></html>',
      { error: { message: 'a\nb\r\nc' } },
      { detail: [{ msg: 'x\ny' }, { msg: 'z' }] },
      { error: 'ollama\nstyle' },
      [{ error: { message: 'gemini\n\nstyle' } }],
      '',
    ];
    for (const status of [400, 401, 403, 404, 429, 500, undefined]) {
      for (const b of bodies) {
        const error = apiErrorFromBody(status, b, { requestId: 'req_1' });
        expectOneLine(error);
      }
    }
  });
});

describe('errors inside a stream (no status)', () => {
  it('uses the integer code of the error object', () => {
    const error = apiErrorFromBody(
      undefined,
      { error: { message: 'Too many requests', code: 429 } },
      {},
    );
    expect(error.status).toBeUndefined();
    expect(error.exitCode).toBe(ExitCode.RATE_LIMIT);
    expect(error.message).toContain('Too many requests');
  });

  it('recognises a rate limit and a content filter by their words', () => {
    expect(
      apiErrorFromBody(undefined, { error: { message: 'Rate limit exceeded', code: 'x' } }, {})
        .exitCode,
    ).toBe(ExitCode.RATE_LIMIT);
    expect(
      apiErrorFromBody(undefined, { error: { message: 'blocked', code: 'content_filter' } }, {})
        .exitCode,
    ).toBe(ExitCode.REJECTED);
  });

  it('anything else is a server error', () => {
    const error = apiErrorFromBody(undefined, { error: { message: 'Internal error' } }, {});
    expect(error.exitCode).toBe(ExitCode.SERVER);
    expect(error.message).toMatch(/in the stream/);
  });

  it('is told as an error in the stream, never as the HTTP status its code names', () => {
    const error = apiErrorFromBody(
      undefined,
      { error: { message: 'Too many requests', code: 429 } },
      {},
    );
    expect(error.message).toContain('rate limited in the stream (code 429)');
    expect(error.message).not.toContain('HTTP 429');
  });
});

describe('the message matches what the server said', () => {
  it('"max_tokens is too large" is not "does not accept max_tokens"', () => {
    const error = apiErrorFromBody(
      400,
      {
        error: {
          message:
            'max_tokens is too large: 100000. This model supports at most 16384 completion tokens, whereas you provided 100000.',
          type: 'invalid_request_error',
          param: 'max_tokens',
          code: null,
        },
      },
      {},
    );
    expect(error.exitCode).toBe(ExitCode.REJECTED);
    expect(error.message).toContain('max_tokens is too large');
    expect(error.message).not.toContain('does not accept max_tokens');
    expect(error.message).not.toContain('--max-completion-tokens');
  });

  it('a server that cannot fetch an image URL, in its many words, suggests --download', () => {
    const words = [
      'Timeout while downloading https://example.com/cat.jpg.',
      'Failed to download image from URL',
      'invalid image input',
      'expected a base64-encoded data URL',
      'Error while fetching the image: 403 Forbidden',
    ];
    for (const message of words) {
      const withUrl = apiErrorFromBody(400, { error: { message } }, { imageUrls: true });
      expect(withUrl.message, message).toContain('--download');
      // Without an image URL in the request, --download would not help: no such hint.
      const withoutUrl = apiErrorFromBody(400, { error: { message } }, { imageUrls: false });
      expect(withoutUrl.message, message).not.toContain('--download');
    }
  });
});

describe('exitCodeFor', () => {
  it('maps each error class to its documented code', () => {
    expect(exitCodeFor(new UsageError('bad flag'))).toBe(2);
    expect(exitCodeFor(new InputError('no file'))).toBe(3);
    expect(exitCodeFor(new ConnectionError('refused'))).toBe(7);
    expect(exitCodeFor(new TimeoutError('slow'))).toBe(7);
    expect(exitCodeFor(new MalformedResponseError('junk'))).toBe(7);
  });

  it('anything that is not ours is an internal error (70, EX_SOFTWARE)', () => {
    expect(exitCodeFor(new Error('bug'))).toBe(70);
    expect(exitCodeFor(new TypeError('bug'))).toBe(70);
    expect(exitCodeFor('a string')).toBe(70);
    expect(exitCodeFor(undefined)).toBe(70);
  });
});
