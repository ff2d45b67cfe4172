/**
 * Pure: turns an error response (any status, any body shape) into an `APIError` with the
 * documented exit code, a headline, the server's own message and a hint on what to do.
 *
 * Body shapes seen in the wild: OpenAI's `{"error": {message, type, code, param}}` (Azure,
 * vLLM >= 0.10.1, OpenRouter with a numeric code), vLLM's older unwrapped
 * `{"object": "error", message, …}`, Gemini's array `[{"error": {…}}]`, Ollama's
 * `{"error": "text"}`, FastAPI's `{"detail": …}`, HTML from a proxy, or plain text.
 */
import { APIError, ExitCode, type RequestContext, type ServerErrorInfo } from '../errors.js';

/** Reads whatever the server sent into message/type/code/param. */
export function parseErrorBody(body: unknown): ServerErrorInfo {
  if (typeof body === 'string') return parseErrorText(body);
  if (Array.isArray(body)) return body.length > 0 ? parseErrorBody(body[0]) : {};
  if (typeof body !== 'object' || body === null) return {};
  const record = body as Record<string, unknown>;
  const inner = record.error;
  if (typeof inner === 'string') return { message: inner, ...codes(record) };
  if (typeof inner === 'object' && inner !== null) {
    const info = parseErrorBody(inner);
    if (info.message !== undefined || info.code !== undefined) return info;
  }
  const message = firstString(record.message, record.detail, record.msg, record.error_description);
  const detail = record.detail;
  if (message === undefined && Array.isArray(detail)) {
    // FastAPI validation errors: [{"loc": [...], "msg": "..."}]
    const msgs = (detail as unknown[])
      .map((d): unknown => (typeof d === 'object' && d !== null ? (d as { msg?: unknown }).msg : d))
      .filter((m): m is string => typeof m === 'string');
    return { message: msgs.join('; ') || undefined, ...codes(record) };
  }
  return { message, ...codes(record) };
}

function codes(record: Record<string, unknown>): Omit<ServerErrorInfo, 'message'> {
  return {
    type: scalar(record.type),
    code: scalar(record.code),
    param: scalar(record.param),
  };
}

function scalar(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

function firstString(...values: unknown[]): string | undefined {
  for (const value of values) if (typeof value === 'string' && value.trim() !== '') return value;
  return undefined;
}

/** A text body: JSON if it parses, the title of an HTML page, else the text itself. */
export function parseErrorText(text: string): ServerErrorInfo {
  const trimmed = text.trim();
  if (trimmed === '') return {};
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return parseErrorBody(JSON.parse(trimmed));
    } catch {
      // not JSON after all: fall through to text
    }
  }
  if (/^<(!doctype|html|head|body|\?xml)/i.test(trimmed)) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(trimmed)?.[1];
    const h1 = /<h1[^>]*>([^<]*)<\/h1>/i.exec(trimmed)?.[1];
    const text = title?.trim() || h1?.trim() || trimmed.replace(/<[^>]*>/g, ' ');
    return { message: decodeEntities(text).replace(/\s+/g, ' ').trim().slice(0, 200) };
  }
  return { message: trimmed.slice(0, 500) };
}

function decodeEntities(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

const QUOTA = /insufficient_quota|quota|billing|credit|balance|payment/i;

/** Whether a 429 means "out of quota" (retrying will not help) rather than "slow down". */
export function isQuotaError(status: number | undefined, info: ServerErrorInfo): boolean {
  if (status === 402) return true;
  if (info.type === 'insufficient_quota' || info.code === 'insufficient_quota') return true;
  return (
    status === 429 &&
    /exceeded your current quota|insufficient (balance|credits?)/i.test(info.message ?? '')
  );
}

/** Builds the `APIError` for a failed response. `body` is the text or the parsed JSON. */
export function apiErrorFromBody(
  status: number | undefined,
  body: unknown,
  ctx: RequestContext,
): APIError {
  const info = parseErrorBody(body);
  const { exitCode, headline, hint } = classify(status, info, ctx);
  return new APIError(status, info, ctx, exitCode, headline, hint);
}

interface Classification {
  exitCode: ExitCode;
  headline: string;
  hint?: string;
}

function classify(
  status: number | undefined,
  info: ServerErrorInfo,
  ctx: RequestContext,
  where?: string,
): Classification {
  const message = info.message ?? '';
  const code = `${info.code ?? ''} ${info.type ?? ''}`;
  const s = where ?? (status === undefined ? 'in the stream' : `(HTTP ${status})`);

  if (status === undefined) {
    // An error object inside a 200 stream: classify by its own code when it has one, but say
    // where it came from (the response itself was a 200).
    const inner = Number(info.code);
    if (Number.isInteger(inner) && inner >= 400 && inner < 600 && inner !== 200) {
      return classify(inner, info, ctx, `in the stream (code ${inner})`);
    }
    if (isQuotaError(429, info)) return quota(s);
    if (/rate.?limit/i.test(code + message)) {
      return {
        exitCode: ExitCode.RATE_LIMIT,
        headline: `rate limited ${s}`,
        hint: 'wait and try again',
      };
    }
    if (/content.?(filter|policy)/i.test(code + message)) return contentPolicy(s);
    return { exitCode: ExitCode.SERVER, headline: `the server reported an error ${s}` };
  }

  if (status === 401) {
    return {
      exitCode: ExitCode.AUTH,
      headline: `the server rejected the API key ${s}`,
      hint: 'check DESCRIBE_IMAGE_API_KEY, --api-key-file or the key stored in your config',
    };
  }
  if (status === 403) {
    if (QUOTA.test(code + message)) {
      return {
        exitCode: ExitCode.AUTH,
        headline: `insufficient balance ${s}`,
        hint: "top up your account's balance, then try again",
      };
    }
    return {
      exitCode: ExitCode.AUTH,
      headline: `permission denied ${s}`,
      hint: 'this key may not have access to this model or endpoint',
    };
  }
  if (isQuotaError(status, info)) return quota(s);
  if (status === 429) {
    return {
      exitCode: ExitCode.RATE_LIMIT,
      headline: `rate limited ${s}`,
      hint: 'wait and try again, or lower --concurrency or set --rpm',
    };
  }
  if (status === 400) {
    if (/content.?(filter|policy|management)|safety|ResponsibleAIPolicy/i.test(code + message)) {
      return contentPolicy(s);
    }
    if (
      /max_tokens.*max_completion_tokens/i.test(message) ||
      (info.param === 'max_tokens' && /unsupported|not supported/i.test(`${code} ${message}`))
    ) {
      return {
        exitCode: ExitCode.REJECTED,
        headline: `this model does not accept max_tokens ${s}`,
        hint: 'use --max-completion-tokens instead of --max-tokens',
      };
    }
    if (/stream_options/i.test(message) || info.param === 'stream_options') {
      return {
        exitCode: ExitCode.REJECTED,
        headline: `the server does not accept stream_options ${s}`,
      };
    }
    if (
      /(image.?urls?|url images?|remote images?)\b.{0,40}(not (currently )?supported|unsupported|not allowed)/i.test(
        message,
      )
    ) {
      return {
        exitCode: ExitCode.REJECTED,
        headline: `the server does not accept image URLs ${s}`,
        hint: 'use --download to fetch the image and send its bytes',
      };
    }
    if (ctx.imageUrls && cannotFetch(message)) {
      return urlFetchFailed(s);
    }
    if (/invalid_image|image/i.test(code) || /\bimage\b/i.test(message)) {
      return {
        exitCode: ExitCode.REJECTED,
        headline: `the server could not use the image ${s}`,
        hint: 'check that it is a valid PNG, JPEG, WebP or GIF file',
      };
    }
    if (
      info.code === 'response_format_unsupported' ||
      /response_format|json_schema/i.test(message)
    ) {
      return {
        exitCode: ExitCode.REJECTED,
        headline: `the server rejected the response format ${s}`,
        hint: 'this model or server may not support --schema or --preset',
      };
    }
    return { exitCode: ExitCode.REJECTED, headline: `the server rejected the request ${s}` };
  }
  if (status === 404) {
    if (/model/i.test(code + message)) {
      return {
        exitCode: ExitCode.REJECTED,
        headline: `model not found ${s}`,
        hint: 'check --model; the server lists its models at GET /models',
      };
    }
    return {
      exitCode: ExitCode.REJECTED,
      headline: `not found ${s} at ${ctx.url ?? 'the API'}`,
      hint: 'check --base-url: it usually ends in /v1',
    };
  }
  if (status === 413) {
    return {
      exitCode: ExitCode.REJECTED,
      headline: `the request is too large for the server ${s}`,
      hint: 'send a smaller image, or use --detail low',
    };
  }
  if (status === 408 || status === 409 || status >= 500) {
    return {
      exitCode: ExitCode.SERVER,
      headline:
        status === 408
          ? `the server timed out ${s}`
          : status === 503
            ? `the service is unavailable ${s}`
            : `the server failed ${s}`,
      hint: 'try again later',
    };
  }
  if (status >= 400) {
    if (ctx.imageUrls && cannotFetch(message)) {
      return urlFetchFailed(s);
    }
    return { exitCode: ExitCode.REJECTED, headline: `the server rejected the request ${s}` };
  }
  return { exitCode: ExitCode.SERVER, headline: `unexpected response ${s}` };
}

/**
 * Ways servers say they could not fetch or read an image given as a URL: a download that timed
 * out or failed, Ollama's "invalid image input", "expected a base64-encoded data URL"…
 */
function cannotFetch(message: string): boolean {
  return (
    /(download|fetch|retriev|get)\w*\b.{0,60}\b(image|url|file)|\b(image|url)\b.{0,60}\b(download|fetch|retriev)/i.test(
      message,
    ) ||
    /invalid image input|expected (a )?base64|base64[- ]encoded|data url|data uri|timed? ?out/i.test(
      message,
    )
  );
}

function urlFetchFailed(s: string): Classification {
  return {
    exitCode: ExitCode.REJECTED,
    headline: `the server could not use the image URL ${s}`,
    hint: 'use --download to fetch the image here and send its bytes',
  };
}

function quota(s: string): Classification {
  return {
    exitCode: ExitCode.RATE_LIMIT,
    headline: `out of quota ${s}`,
    hint: 'check your plan and billing details; retrying will not help',
  };
}

function contentPolicy(s: string): Classification {
  return {
    exitCode: ExitCode.REJECTED,
    headline: `refused by the content policy ${s}`,
    hint: 'the prompt or image was flagged; change it and try again',
  };
}
