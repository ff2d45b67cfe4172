/**
 * End to end, image preparation: the built CLI spawned as a user would, against the real
 * loopback server of test/helpers/server.ts. What matters is what the server receives: each
 * data URL is decoded and inspected with sharp (format, size, pixels, metadata). --dry-run,
 * --debug, --original, the size limits and --download are checked the same way.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, link, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/images.js';
import { answer, errorHandler, okHandler, serverPool } from '../helpers/server.js';
import type { Handler, RecordedRequest, TestServer } from '../helpers/server.js';
import {
  BLUE,
  decode,
  expectColour,
  expectNoMetadata,
  expectSplit,
  expectTurnedClockwise,
  GREEN,
  hasGpsLatitude,
  noise,
  phoneJpeg,
  RED,
  splitRaw,
  type Rgb,
} from '../helpers/pixels.js';

const KEY = 'sk-images-test-7f3a9c1e5b2d4680-SECRET';
const ERROR_PREFIX = 'describe-image: error: ';
const USAGE_LINE = 'tokens: 1,250 in · 89 out · 1,339 total';
// gpt-4o-2024-08-06 at $2.50 in and $10 out per million tokens: 1,250 × 2.5 + 89 × 10 = $0.004015.
const COST_LINE = 'cost: ~$0.0040 (estimate: $2.50/M in, $10.00/M out)';
/** What stderr holds after a successful single answer. */
const USAGE_LINES = `${USAGE_LINE}\n${COST_LINE}\n`;

// ---------------------------------------------------------------------------------------------
// Images

// ---------------------------------------------------------------------------------------------
// Requests and output

interface ContentPart {
  type: string;
  text?: string;
  image_url?: { url: string; detail?: string };
}

function imageParts(req: RecordedRequest): ContentPart[] {
  const user = (req.json.messages as { role: string; content: string | ContentPart[] }[]).find(
    (m) => m.role === 'user',
  );
  if (!user || typeof user.content === 'string') throw new Error('no user message with parts');
  return user.content.filter((p) => p.type === 'image_url');
}

function imageUrls(req: RecordedRequest): string[] {
  return imageParts(req).map((p) => p.image_url?.url ?? '');
}

/** The MIME type and bytes of a base64 data URL. */
function fromDataUrl(url: string): { mime: string; bytes: Buffer } {
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (!match) throw new Error(`not a base64 data URL: ${url.slice(0, 60)}`);
  return { mime: match[1]!, bytes: Buffer.from(match[2]!, 'base64') };
}

/** The one image of the one request the server received. */
function received(server: TestServer): { mime: string; bytes: Buffer } {
  expect(server.requests).toHaveLength(1);
  const urls = imageUrls(server.requests[0]!);
  expect(urls).toHaveLength(1);
  return fromDataUrl(urls[0]!);
}

function expectPlainStderr(r: CliResult): void {
  expect(r.stderr).not.toContain('\u001b');
  expect(r.stderr, 'no stack trace').not.toMatch(/^\s{4}at /m);
}

function errorLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith(ERROR_PREFIX));
}

/** Exactly one error line, and nothing else on stderr. */
function onlyErrorLine(r: CliResult): string {
  expectPlainStderr(r);
  const lines = errorLines(r);
  expect(lines, `one error line in:\n${r.stderr}`).toHaveLength(1);
  expect(r.stderr).toBe(`${lines[0]!}\n`);
  return lines[0]!;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The per-image report line for `name` (after an optional debug prefix). */
function reportLine(stderr: string, name: string): string {
  const line = stderr
    .split('\n')
    .find((l) => new RegExp(`^(describe-image: debug: )?${escape(name)}: [A-Z]`).test(l));
  if (!line) throw new Error(`no report line for ${name} in:\n${stderr}`);
  return line.replace(/^describe-image: debug: /, '');
}

// ---------------------------------------------------------------------------------------------

let dir: string;
const files = new Map<string, Buffer>();
const serve = serverPool();

async function put(name: string, data: Buffer): Promise<void> {
  files.set(name, data);
  await writeFile(path.join(dir, name), data);
}

function file(name: string): Buffer {
  const data = files.get(name);
  if (!data) throw new Error(`no test file ${name}`);
  return data;
}

beforeAll(async () => {
  dir = await tempDir('describe-image-cli-images-');
  await put('split.jpg', await splitRaw(96, 64).jpeg().toBuffer());
  await put('split.png', await splitRaw(96, 64).png().toBuffer());
  await put('split-alpha.png', await splitRaw(96, 64, { alphaBottom: true }).png().toBuffer());
  await put('split.webp', await splitRaw(96, 64).webp({ lossless: true }).toBuffer());
  await put('split.gif', await splitRaw(96, 64).gif().toBuffer());
  await put('split.tiff', await splitRaw(96, 64).tiff().toBuffer());
  await put('split.avif', await splitRaw(96, 64).avif().toBuffer());
  await put('split-alpha.avif', await splitRaw(96, 64, { alphaBottom: true }).avif().toBuffer());
  for (const name of ['split.heic', 'split-alpha.heic', 'split.bmp', 'split-alpha.bmp']) {
    await copyFile(path.join(ROOT, 'test/fixtures/images', name), path.join(dir, name));
    files.set(name, await readFile(path.join(dir, name)));
  }
  // Three 40×30 frames, red, green, blue, stacked and cut with pageHeight.
  const frame = (c: Rgb) => Buffer.alloc(40 * 30 * 3).map((_, i) => c[i % 3]!);
  await put(
    'spin.gif',
    await sharp(Buffer.concat([frame(RED), frame(GREEN), frame(BLUE)]), {
      raw: { width: 40, height: 90, channels: 3, pageHeight: 30 },
    })
      .gif({ loop: 0, delay: [100, 100, 100] })
      .toBuffer(),
  );
  await put('photo.jpg', await phoneJpeg(4032, 3024, 6));
  await put('turned.jpg', await phoneJpeg(1024, 768, 6));
  await put('exif.jpg', await phoneJpeg(200, 150, 1));
  await put('wide.jpg', await splitRaw(4000, 1000).jpeg().toBuffer());
  await put('small.png', await splitRaw(100, 80).png().toBuffer());
  await put('square.png', await splitRaw(1024, 1024).png().toBuffer());
  // Broken files.
  await put('cut.jpg', file('photo.jpg').subarray(0, 3000));
  await put('corrupt.jpg', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), randomBytes(4000)]));
  await put('empty.png', Buffer.alloc(0));
  await put('text.png', Buffer.from('this is a shopping list, not a picture\n'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the generated inputs are what the tests think', () => {
  it('photo.jpg is a 4032×3024 JPEG with orientation 6, EXIF and GPS', async () => {
    const photo = file('photo.jpg');
    const meta = await sharp(photo).metadata();
    expect([meta.format, meta.width, meta.height, meta.orientation]).toEqual([
      'jpeg',
      4032,
      3024,
      6,
    ]);
    expect(meta.exif).toBeDefined();
    expect(photo.includes('AcmePhone')).toBe(true);
    expect(hasGpsLatitude(photo)).toBe(true);
    expect((await sharp(file('spin.gif')).metadata()).pages).toBe(3);
    expect((await sharp(file('split.avif')).metadata()).hasAlpha).toBe(false);
  });
});

describe('formats: what the server receives', () => {
  it.each([
    ['split.jpg', 'image/jpeg'],
    ['split.png', 'image/png'],
    ['split-alpha.png', 'image/png'],
    ['split.webp', 'image/webp'],
    ['split.gif', 'image/gif'],
  ])('%s is sent in its own format, byte for byte (%s)', async (name, mime) => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, name], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(USAGE_LINES);
    const got = received(server);
    expect(got.mime).toBe(mime);
    expect(got.bytes.equals(file(name))).toBe(true);
  });

  it.each([
    ['split.heic', 'jpeg', false],
    ['split-alpha.heic', 'png', true],
    ['split.bmp', 'jpeg', false],
    ['split-alpha.bmp', 'png', true],
    ['split.avif', 'jpeg', false],
    ['split-alpha.avif', 'png', true],
    ['split.tiff', 'jpeg', false],
  ] as const)(
    '%s is converted to %s (alpha: %s), same size and colours',
    async (name, format, alpha) => {
      const server = await serve();
      const r = await runCli(['--base-url', server.baseUrl, name], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe(USAGE_LINES);
      const got = received(server);
      expect(got.mime).toBe(`image/${format}`);
      const meta = await sharp(got.bytes).metadata();
      expect([meta.format, meta.width, meta.height, meta.hasAlpha]).toEqual([
        format,
        96,
        64,
        alpha,
      ]);
      await expectSplit(got.bytes, { alphaBottom: alpha });
      await expectNoMetadata(got.bytes);
    },
  );

  it('an animated GIF: only its first frame is sent, as PNG or JPEG, with a notice', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, 'spin.gif'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    expect(['image/png', 'image/jpeg']).toContain(got.mime);
    const meta = await sharp(got.bytes).metadata();
    expect(meta.format).toBe(got.mime.slice('image/'.length));
    expect(meta.pages ?? 1).toBe(1);
    expect([meta.width, meta.height]).toEqual([40, 30]);
    expectColour((await decode(got.bytes)).at(20, 15), RED, 255, 50);
    // The notice, then the usage and cost lines.
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/spin\.gif/);
    expect(lines[0]).toMatch(/animated/i);
    expect(lines[0]).toMatch(/\b3 frames\b/);
    expect(lines[1]).toBe(USAGE_LINE);
    expect(lines[2]).toBe(COST_LINE);
    expectPlainStderr(r);
  });

  it('-q hides the animated-GIF notice', async () => {
    const server = await serve();
    const r = await runCli(['-q', '--base-url', server.baseUrl, 'spin.gif'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('a BMP piped into standard input is converted too', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '-'], { stdin: file('split.bmp') });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    expect(got.mime).toBe('image/jpeg');
    await expectSplit(got.bytes);
  });

  it('a data: URL holding a HEIC is converted too', async () => {
    const server = await serve();
    const url = `data:image/heic;base64,${file('split.heic').toString('base64')}`;
    const r = await runCli(['--base-url', server.baseUrl, url]);
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    expect(got.mime).toBe('image/jpeg');
    await expectSplit(got.bytes);
  });
});

describe('orientation and privacy', () => {
  it('a 4032×3024 photo with orientation 6 and GPS arrives upright as 768×1024, with no metadata', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, 'photo.jpg'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    expect(got.mime).toBe('image/jpeg');
    const meta = await sharp(got.bytes).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 768, 1024]);
    await expectNoMetadata(got.bytes);
    expectTurnedClockwise(await decode(got.bytes));
    expect(got.bytes.length).toBeLessThan(file('photo.jpg').length);
  });

  it('a landscape 1024×768 with orientation 6 arrives as 768×1024', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, 'turned.jpg'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    const meta = await sharp(got.bytes).metadata();
    expect([meta.width, meta.height]).toEqual([768, 1024]);
    await expectNoMetadata(got.bytes);
    expectTurnedClockwise(await decode(got.bytes));
  });

  it('--keep-metadata: the received bytes carry the EXIF, GPS included, and are still upright', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--keep-metadata', 'photo.jpg'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    const meta = await sharp(got.bytes).metadata();
    expect([meta.width, meta.height]).toEqual([768, 1024]);
    expect(meta.exif).toBeDefined();
    expect(meta.orientation ?? 1).toBe(1);
    expect(got.bytes.includes('Exif')).toBe(true);
    expect(got.bytes.includes('AcmePhone')).toBe(true);
    expect(hasGpsLatitude(got.bytes)).toBe(true);
    expectTurnedClockwise(await decode(got.bytes));
  });

  it('an image of the right size with EXIF is re-encoded without it', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, 'exif.jpg'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    expect(got.mime).toBe('image/jpeg');
    expect(got.bytes.equals(file('exif.jpg'))).toBe(false);
    const meta = await sharp(got.bytes).metadata();
    expect([meta.width, meta.height]).toEqual([200, 150]);
    await expectNoMetadata(got.bytes);
  });
});

describe('sizes', () => {
  it.each([[['--detail', 'high']], [['--detail', 'auto']], [[]]])(
    '%j: 4000×1000 arrives as 2048×512',
    async (args) => {
      const server = await serve();
      const r = await runCli(['--base-url', server.baseUrl, ...args, 'wide.jpg'], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      const got = received(server);
      const meta = await sharp(got.bytes).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 2048, 512]);
      expect(imageParts(server.requests[0]!)[0]!.image_url!.detail).toBe(args[1]);
    },
  );

  it('--detail low: fit inside 512×512', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--detail', 'low', 'wide.jpg'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    const meta = await sharp(received(server).bytes).metadata();
    expect([meta.width, meta.height]).toEqual([512, 128]);
  });

  it('--detail low never scales up: a 100×80 PNG arrives byte for byte', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--detail', 'low', 'small.png'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    expect(got.mime).toBe('image/png');
    expect(got.bytes.equals(file('small.png'))).toBe(true);
  });

  it('--max-size 300 makes the long edge 300, whatever --detail says', async () => {
    for (const args of [[], ['--detail', 'low'], ['--detail', 'high']]) {
      const server = await serve();
      const r = await runCli(
        ['--base-url', server.baseUrl, '--max-size', '300', ...args, 'wide.jpg'],
        { cwd: dir },
      );
      expect(r.code, args.join(' ')).toBe(0);
      const meta = await sharp(received(server).bytes).metadata();
      expect([meta.width, meta.height], args.join(' ')).toEqual([300, 75]);
    }
  });

  it('--max-size never scales up: the small PNG is still sent byte for byte', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--max-size', '300', 'small.png'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(received(server).bytes.equals(file('small.png'))).toBe(true);
  });
});

describe('broken files: exit 3, naming the file, one error line', () => {
  it.each([
    ['cut.jpg', /^describe-image: error: cut\.jpg: .*(truncated|corrupt)/],
    ['corrupt.jpg', /^describe-image: error: corrupt\.jpg: .*corrupt/],
    ['empty.png', /^describe-image: error: empty\.png: .*empty/],
    ['text.png', /^describe-image: error: text\.png: not a valid PNG image/],
  ])('%s', async (name, says) => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, name], { cwd: dir });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toBe('');
    expect(onlyErrorLine(r)).toMatch(says);
    expect(server.requests).toHaveLength(0);
  });

  it('in a --json batch the good images still succeed, and the exit code is 3', async () => {
    const server = await serve(okHandler({ text: 'Red and blue.' }));
    const names = ['split.png', 'cut.jpg', 'split.heic', 'empty.png', 'text.png', 'corrupt.jpg'];
    const r = await runCli(['--base-url', server.baseUrl, '--json', ...names], { cwd: dir });
    expect(r.code, r.stderr).toBe(3);
    expect(server.requests).toHaveLength(2);
    const records = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; text: unknown; error?: { code: number } });
    expect(records.map((rec) => rec.image).sort()).toEqual([...names].sort());
    for (const rec of records) {
      if (rec.image === 'split.png' || rec.image === 'split.heic') {
        expect(rec.text, rec.image).toBe('Red and blue.');
        expect(rec.error, rec.image).toBeUndefined();
      } else {
        expect(rec.text, rec.image).toBeNull();
        expect(rec.error?.code, rec.image).toBe(3);
      }
    }
    const errors = errorLines(r);
    expect(errors).toHaveLength(4);
    for (const bad of ['cut.jpg', 'empty.png', 'text.png', 'corrupt.jpg']) {
      expect(
        errors.filter((l) => l.startsWith(`${ERROR_PREFIX}${bad}: `)),
        bad,
      ).toHaveLength(1);
    }
    expectPlainStderr(r);
  });
});

describe('--dry-run', () => {
  const REPORT =
    /^photo\.jpg: JPEG 3,024×4,032 \d+(\.\d)? KB → JPEG 768×1,024 \d+(\.\d)? KB \(\d+ % smaller, \d+ ms\) · ≤ 765 image tokens \(detail auto\)$/;

  it('sends no request and prints the body as JSON, inline images shortened', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--dry-run', 'photo.jpg'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests).toHaveLength(0);
    const body = JSON.parse(r.stdout);
    expect(body.model).toBe('gpt-4o-2024-08-06');
    const urls = (body.messages[0].content as ContentPart[]).filter((p) => p.type === 'image_url');
    expect(urls).toHaveLength(1);
    const url = urls[0]!.image_url!.url;
    const match = /^data:image\/jpeg;base64,…\(([\d,]+) bytes\)$/.exec(url);
    expect(match, url).not.toBeNull();
    const bytes = Number(match![1]!.replace(/,/g, ''));
    expect(bytes).toBeGreaterThan(1000);
    expect(bytes).toBeLessThan(file('photo.jpg').length);
    // The per-image line: original format, size and bytes → what is sent, the saving, tokens.
    expect(reportLine(r.stderr, 'photo.jpg')).toMatch(REPORT);
    expect(r.stderr).toContain(`POST ${server.baseUrl}/chat/completions`);
    expect(r.stderr).toContain('authorization: none (no key)');
    expect(r.stderr).toMatch(/dry run: 1 request not sent · estimated image tokens: ~765/);
    expectPlainStderr(r);
  });

  it('needs no key, even for a base URL that is not this machine', async () => {
    const r = await runCli(
      ['--base-url', 'https://api.example.invalid/v1', '--dry-run', 'split.png'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(errorLines(r)).toEqual([]);
    expect(r.stderr).toContain('POST https://api.example.invalid/v1/chat/completions');
    expect(r.stderr).toContain('authorization: none (no key)');
    expect(JSON.parse(r.stdout).messages).toHaveLength(1);
  });

  it('shows no key when one is set, even with --debug', async () => {
    const r = await runCli(
      ['--base-url', 'https://api.example.invalid/v1', '--dry-run', '--debug', 'photo.jpg'],
      { cwd: dir, env: { DESCRIBE_IMAGE_API_KEY: KEY } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(KEY);
    expect(r.stderr).not.toContain(KEY);
    expect(r.stdout).not.toContain('SECRET');
    expect(r.stderr).not.toContain('SECRET');
    expect(r.stderr).toContain('authorization: Bearer *** (redacted)');
    JSON.parse(r.stdout);
  });

  it('reports a converted image: HEIC 96×64 → JPEG, with the saving and ~255 tokens at detail high', async () => {
    const r = await runCli(
      [
        '--base-url',
        'https://api.example.invalid/v1',
        '--dry-run',
        '--detail',
        'high',
        'split.heic',
      ],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const heicBytes = file('split.heic').length;
    expect(reportLine(r.stderr, 'split.heic')).toMatch(
      new RegExp(
        `^split\\.heic: HEIC 96×64 ${heicBytes} B → JPEG 96×64 \\d+ B \\(\\d+ % (smaller|larger), \\d+ ms\\) · ~255 image tokens$`,
      ),
    );
    const body = JSON.parse(r.stdout);
    expect(JSON.stringify(body)).toMatch(/data:image\/jpeg;base64,…\(\d+ bytes\)/);
    expect(body.messages[0].content[1].image_url.detail).toBe('high');
  });

  it('an image sent as it is, at detail low: "sent as it is" and ~85 tokens', async () => {
    const r = await runCli(
      ['--base-url', 'https://api.example.invalid/v1', '--dry-run', '--detail', 'low', 'small.png'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const bytes = file('small.png').length;
    expect(reportLine(r.stderr, 'small.png')).toBe(
      `small.png: PNG 100×80 ${bytes} B, sent as it is · ~85 image tokens`,
    );
    expect(r.stdout).toContain(`data:image/png;base64,…(${bytes} bytes)`);
  });

  it('scales for the model it goes to: gpt-4.1-mini counts patches, so the photo goes at 1056×1408', async () => {
    const dry = (model: string, name: string) =>
      runCli(['--base-url', 'https://api.example.invalid/v1', '--dry-run', '-m', model, name], {
        cwd: dir,
      });
    const mini = await dry('gpt-4.1-mini', 'photo.jpg');
    expect(mini.code, mini.stderr).toBe(0);
    // 1,452 patches × 1.62, as the model would count the original.
    expect(reportLine(mini.stderr, 'photo.jpg')).toMatch(
      /^photo\.jpg: JPEG 3,024×4,032 .* → JPEG 1,056×1,408 .* · ≤ 2,353 image tokens \(detail auto\)$/,
    );
    // gpt-4o counts tiles: the 768-px rule.
    const tiles = await dry('gpt-4o', 'photo.jpg');
    expect(reportLine(tiles.stderr, 'photo.jpg')).toMatch(/→ JPEG 768×1,024 /);
    // Within the 1,536-patch cap: nothing to scale, sent as it is.
    const square = await dry('gpt-4.1-mini', 'square.png');
    expect(square.code, square.stderr).toBe(0);
    expect(reportLine(square.stderr, 'square.png')).toMatch(
      /^square\.png: PNG 1,024×1,024 .*, sent as it is · ≤ 1,659 image tokens \(detail auto\)$/,
    );
  });

  it('an unknown model: the estimate says "unknown"', async () => {
    const r = await runCli(
      ['--base-url', 'https://api.example.invalid/v1', '--dry-run', '-m', 'llava', 'photo.jpg'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(reportLine(r.stderr, 'photo.jpg')).toMatch(/ · image tokens: unknown for this model$/);
    expect(r.stderr).toMatch(/estimated image tokens: .*unknown/);
    expect(r.stderr).not.toMatch(/~\d+ image tokens/);
  });

  it('several images: one JSON line per request on stdout, one report line each on stderr', async () => {
    const server = await serve();
    const names = ['split.png', 'split.heic', 'spin.gif'];
    const r = await runCli(['--base-url', server.baseUrl, '--dry-run', ...names], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests).toHaveLength(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const mimes = lines.map((l) => {
      const body = JSON.parse(l);
      return /^data:(image\/\w+);base64,…\(/.exec(body.messages[0].content[1].image_url.url)?.[1];
    });
    expect(mimes.slice(0, 2)).toEqual(['image/png', 'image/jpeg']);
    for (const name of names) expect(reportLine(r.stderr, name)).toBeTruthy();
    expect(r.stderr).toMatch(/animated/i);
  });

  it('a broken file is still an input error (exit 3), and nothing is sent', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--dry-run', 'cut.jpg'], { cwd: dir });
    expect(r.code, r.stderr).toBe(3);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(/^describe-image: error: cut\.jpg: /);
    expect(server.requests).toHaveLength(0);
  });
});

describe('--debug', () => {
  it('shows the same per-image line as --dry-run on a real run', async () => {
    const server = await serve();
    const real = await runCli(['--base-url', server.baseUrl, '--debug', 'photo.jpg'], {
      cwd: dir,
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    expect(real.code, real.stderr).toBe(0);
    expect(server.requests).toHaveLength(1);
    expect(real.stderr).not.toContain(KEY);
    const debugLine = reportLine(real.stderr, 'photo.jpg');
    expect(real.stderr).toContain(`describe-image: debug: ${debugLine}`);

    const dry = await runCli(['--base-url', server.baseUrl, '--dry-run', 'photo.jpg'], {
      cwd: dir,
    });
    expect(dry.code, dry.stderr).toBe(0);
    const dryLine = reportLine(dry.stderr, 'photo.jpg');
    const withoutTime = (l: string) => l.replace(/, \d+ ms\)/, ', N ms)');
    expect(withoutTime(debugLine)).toBe(withoutTime(dryLine));
    // And both describe what was really sent: the dry run's shortened data URL gives its size.
    const got = received(server);
    expect(debugLine).toContain(`→ JPEG 768×1,024`);
    expect(JSON.parse(dry.stdout).messages[0].content[1].image_url.url).toBe(
      `data:image/jpeg;base64,…(${got.bytes.length.toLocaleString('en-US')} bytes)`,
    );
  });

  it('in a batch, each image has its line', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--debug', 'split.bmp', 'wide.jpg'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(reportLine(r.stderr, 'split.bmp')).toMatch(/^split\.bmp: BMP 96×64 .* → JPEG 96×64 /);
    expect(reportLine(r.stderr, 'wide.jpg')).toMatch(
      /^wide\.jpg: JPEG 4,000×1,000 .* → JPEG 2,048×512 .* · ≤ 765 image tokens \(detail auto\)$/,
    );
  });
});

describe('--original', () => {
  it('sends the exact bytes of a large, rotated JPEG with GPS', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--original', 'photo.jpg'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(0);
    const got = received(server);
    expect(got.mime).toBe('image/jpeg');
    expect(got.bytes.equals(file('photo.jpg'))).toBe(true);
  });

  it.each(['split.heic', 'split.bmp'])('is an input error for %s (exit 3)', async (name) => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--original', name], { cwd: dir });
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(
      new RegExp(`^describe-image: error: ${escape(name)}: .*--original`),
    );
    expect(server.requests).toHaveLength(0);
  });

  it('still checks the image decodes (a truncated JPEG is exit 3)', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--original', 'cut.jpg'], { cwd: dir });
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(/^describe-image: error: cut\.jpg: /);
    expect(server.requests).toHaveLength(0);
  });

  it('with --max-size is a usage error (exit 2)', async () => {
    const server = await serve();
    const r = await runCli(
      ['--base-url', server.baseUrl, '--original', '--max-size', '300', 'photo.jpg'],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(2);
    expect(onlyErrorLine(r)).toMatch(/--original.*--max-size/);
    expect(server.requests).toHaveLength(0);
  });
});

describe('limits', () => {
  beforeAll(async () => {
    // Random noise does not compress: 2700×2700 RGB is about 21.9 MB, over 20 MB (20 MiB);
    // 2500×2500 is about 18.8 MB, under it, and three of those are over 50 MB (50 MiB).
    await writeFile(
      path.join(dir, 'noise-big.png'),
      await noise(2700, 2700).png({ compressionLevel: 0 }).toBuffer(),
    );
    const medium = await noise(2500, 2500).png({ compressionLevel: 0 }).toBuffer();
    expect(medium.length).toBeLessThan(20 * 1024 * 1024);
    expect(medium.length * 3).toBeGreaterThan(50 * 1024 * 1024);
    await writeFile(path.join(dir, 'noise-1.png'), medium);
    // Hard links: three paths (not de-duplicated), one copy on disk.
    await link(path.join(dir, 'noise-1.png'), path.join(dir, 'noise-2.png'));
    await link(path.join(dir, 'noise-1.png'), path.join(dir, 'noise-3.png'));
  });

  it('an image still over 20 MB after preparation is an input error', async () => {
    const server = await serve();
    const r = await runCli(['--base-url', server.baseUrl, '--original', 'noise-big.png'], {
      cwd: dir,
    });
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(/^describe-image: error: noise-big\.png: .*20 MB/);
    // It suggests what the tool accepts: --max-size with --original is a usage error.
    expect(onlyErrorLine(r)).toMatch(/leave out --original so that it is scaled down/);
    expect(onlyErrorLine(r)).not.toContain('--max-size');
    expect(server.requests).toHaveLength(0);
  });

  it('--together with images totalling over 50 MB is an input error', async () => {
    const server = await serve();
    const r = await runCli(
      [
        '--base-url',
        server.baseUrl,
        '--together',
        '--original',
        'noise-1.png',
        'noise-2.png',
        'noise-3.png',
      ],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(/50 MB.*leave out --original so that they are scaled down/);
    expect(onlyErrorLine(r)).not.toContain('--max-size');
    expect(server.requests).toHaveLength(0);
  });
});

describe('--download', () => {
  /** A second loopback server standing in for the web site the image is on. */
  async function imageHost(): Promise<TestServer> {
    const host = await serve();
    const routes: Handler = (req, res) => {
      switch (req.url) {
        case '/photo.jpg':
          res.writeHead(200, { 'content-type': 'image/jpeg' });
          res.end(file('photo.jpg'));
          return;
        case '/img?id=7':
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.end(file('split.bmp'));
          return;
        case '/old/photo.jpg':
          res.writeHead(302, { location: '/photo.jpg' });
          res.end();
          return;
        case '/page.html':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end('<!doctype html><html><body>Not a picture</body></html>');
          return;
        case '/huge.png':
          res.writeHead(200, {
            'content-type': 'image/png',
            'content-length': String(60 * 1024 * 1024),
          });
          res.write(file('split.png'));
          return;
        case '/endless.png': {
          // No content-length: 1 MiB chunks until the client hangs up (or 60 MiB).
          res.writeHead(200, { 'content-type': 'image/png' });
          const chunk = Buffer.concat([file('split.png'), Buffer.alloc(1024 * 1024)]);
          let sent = 0;
          const more = (): void => {
            while (sent < 60 && !res.destroyed) {
              sent++;
              if (!res.write(chunk)) {
                res.once('drain', more);
                return;
              }
            }
            res.end();
          };
          res.on('error', () => undefined);
          more();
          return;
        }
        default:
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found');
      }
    };
    host.handle(routes);
    return host;
  }

  it('fetches the image without the key and sends the prepared bytes to the API', async () => {
    const api = await serve();
    const host = await imageHost();
    const url = `${host.origin}/photo.jpg`;
    const r = await runCli(['--base-url', api.baseUrl, '--download', url], {
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(host.requests).toHaveLength(1);
    expect(host.requests[0]!.method).toBe('GET');
    expect(host.requests[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(host.requests[0]!.headers)).not.toContain(KEY);
    expect(api.requests).toHaveLength(1);
    expect(api.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    const got = received(api);
    expect(got.mime).toBe('image/jpeg');
    const meta = await sharp(got.bytes).metadata();
    expect([meta.width, meta.height]).toEqual([768, 1024]);
    await expectNoMetadata(got.bytes);
    expectTurnedClockwise(await decode(got.bytes));
    expect(r.stderr).not.toContain(KEY);
  });

  it('follows redirects, still without the key', async () => {
    const api = await serve();
    const host = await imageHost();
    const r = await runCli(
      ['--base-url', api.baseUrl, '--download', `${host.origin}/old/photo.jpg`],
      {
        env: { DESCRIBE_IMAGE_API_KEY: KEY },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(host.requests.map((q) => q.url)).toEqual(['/old/photo.jpg', '/photo.jpg']);
    for (const q of host.requests) expect(q.headers.authorization).toBeUndefined();
    const meta = await sharp(received(api).bytes).metadata();
    expect([meta.width, meta.height]).toEqual([768, 1024]);
  });

  it('the bytes decide the format (a BMP served as octet-stream is converted)', async () => {
    const api = await serve();
    const host = await imageHost();
    const r = await runCli(['--base-url', api.baseUrl, '--download', `${host.origin}/img?id=7`]);
    expect(r.code, r.stderr).toBe(0);
    const got = received(api);
    expect(got.mime).toBe('image/jpeg');
    await expectSplit(got.bytes);
  });

  it('a 404 is exit 3, and nothing is sent to the API', async () => {
    const api = await serve();
    const host = await imageHost();
    const url = `${host.origin}/missing.png`;
    const r = await runCli(['--base-url', api.baseUrl, '--download', url]);
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(new RegExp(`^describe-image: error: ${escape(url)}: .*404`));
    expect(api.requests).toHaveLength(0);
  });

  it('an HTML page is exit 3: not an image', async () => {
    const api = await serve();
    const host = await imageHost();
    const url = `${host.origin}/page.html`;
    const r = await runCli(['--base-url', api.baseUrl, '--download', url]);
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(
      new RegExp(`^describe-image: error: ${escape(url)}: not an image`),
    );
    expect(api.requests).toHaveLength(0);
  });

  it('an image over the 50 MB download limit is exit 3', async () => {
    const api = await serve();
    const host = await imageHost();
    const url = `${host.origin}/huge.png`;
    const r = await runCli(['--base-url', api.baseUrl, '--download', url]);
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(/limit/);
    expect(api.requests).toHaveLength(0);
  });

  it('an image that goes on past 50 MB without a content-length is exit 3', async () => {
    const api = await serve();
    const host = await imageHost();
    const url = `${host.origin}/endless.png`;
    const r = await runCli(['--base-url', api.baseUrl, '--download', url]);
    expect(r.code, r.stderr).toBe(3);
    expect(onlyErrorLine(r)).toMatch(new RegExp(`^describe-image: error: ${escape(url)}: .*limit`));
    expect(api.requests).toHaveLength(0);
  });

  it('with --dry-run nothing is fetched and nothing is sent: the download is only named', async () => {
    const api = await serve();
    const host = await imageHost();
    const url = `${host.origin}/photo.jpg`;
    const r = await runCli(['--base-url', api.baseUrl, '--dry-run', '--download', url], {
      env: { DESCRIBE_IMAGE_API_KEY: KEY },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(api.requests).toHaveLength(0);
    expect(host.requests).toHaveLength(0);
    expect(r.stderr).toContain(`${url}: would be downloaded and sent as bytes`);
    expect(JSON.parse(r.stdout).messages[0].content[1].image_url.url).toBe(url);
    expect(r.stdout + r.stderr).not.toContain(KEY);
  });

  it('without --download the URL is passed through and the image host sees nothing', async () => {
    const api = await serve();
    const host = await imageHost();
    const url = `${host.origin}/photo.jpg`;
    const r = await runCli(['--base-url', api.baseUrl, url]);
    expect(r.code, r.stderr).toBe(0);
    expect(host.requests).toHaveLength(0);
    expect(imageUrls(api.requests[0]!)).toEqual([url]);
  });
});

describe('a server that cannot fetch image URLs', () => {
  it("Ollama's 400 gives exit 6 and suggests --download", async () => {
    const api = await serve(
      errorHandler(400, {
        error: {
          message: 'image URLs are not currently supported, please use base64 encoded data instead',
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      }),
    );
    const r = await runCli(['--base-url', api.baseUrl, 'https://example.com/cat.jpg']);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stdout).toBe('');
    const line = onlyErrorLine(r);
    expect(line).toMatch(/image URLs/);
    expect(line).toContain('--download');
    expect(api.requests).toHaveLength(1);
  });

  it('the same run with --download then succeeds', async () => {
    const api = await serve((req, res) => {
      const url = imageUrls(req)[0] ?? '';
      if (/^https?:/.test(url)) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: {
              message: 'image URLs are not currently supported',
              type: 'invalid_request_error',
            },
          }),
        );
      } else {
        answer(req, res, { text: 'Red and blue.' });
      }
    });
    const host = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(file('split.png'));
    });
    const r = await runCli(['--base-url', api.baseUrl, '--download', `${host.origin}/a.png`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Red and blue.\n');
    expect(received(api).bytes.equals(file('split.png'))).toBe(true);
  });
});
