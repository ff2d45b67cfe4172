/**
 * A batch whose stdout and stderr are a terminal, run in-process (`run(argv, deps)` with fake
 * streams that say isTTY): answers lose their control sequences on the way to the terminal;
 * file names show theirs as visible escapes, on stdout's headers and stderr's debug, error and
 * summary lines; and the progress line gets its total from the count that runs beside the batch.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import chalk from 'chalk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, tempDir } from '../helpers/images.js';
import { okHandler, startServer, type TestServer } from '../helpers/server.js';
import { runInProcess } from '../helpers/in-process.js';
import { SGR } from '../helpers/streams.js';

const EVIL_NAME = 'evil\x1b]0;owned\x07\x1b[2J.png';
/** The same name as stderr shows it: every control character a visible `\xNN`. */
const EVIL_SHOWN = String.raw`evil\x1b]0;owned\x07\x1b[2J.png`;
/** What the name's control sequences would do to a terminal: set its title, clear it. */
const RAW_CONTROLS = ['\x1b]0;', '\x07', '\x1b[2J'];
const EVIL_ANSWER = 'A cat \x1b[31mon\x1b[0m a mat.\x1b]52;c;cHduZWQ=\x07';

let server: TestServer;
let dir: string;
/** Holds a broken image under the hostile name, and a good one. */
let brokenDir: string;

beforeAll(async () => {
  server = await startServer(okHandler({ text: EVIL_ANSWER }));
  dir = await tempDir();
  await writeFile(path.join(dir, EVIL_NAME), await makeImage('png', { width: 20, height: 10 }));
  await writeFile(path.join(dir, 'plain.png'), await makeImage('png', { width: 30, height: 10 }));
  brokenDir = await tempDir();
  const png = await makeImage('png', { width: 20, height: 10 });
  await writeFile(path.join(brokenDir, EVIL_NAME), png.subarray(0, 40));
  await writeFile(path.join(brokenDir, 'plain.png'), png);
});

afterAll(async () => {
  await server.close();
});

function runOnTerminal(
  argv: string[],
  cwd = dir,
  colour: Record<string, string> = { NO_COLOR: '1' },
) {
  return runInProcess(argv, {
    cwd,
    terminal: true,
    env: {
      DESCRIBE_IMAGE_BASE_URL: server.baseUrl,
      DESCRIBE_IMAGE_API_KEY: 'sk-test-terminal',
      ...colour,
    },
  });
}

describe('a batch on a terminal', () => {
  it('file names and answers reach the terminal without their control sequences', async () => {
    // --debug: stderr names each image in its preparation line.
    const r = await runOnTerminal(['.', 'What is this?', '--debug']);
    expect(r.code).toBe(0);
    // The name's control characters are shown, escaped; the answer's are removed.
    expect(r.stdout).toBe(
      `==> ${EVIL_SHOWN} <==\nA cat on a mat.\n\n==> plain.png <==\nA cat on a mat.\n`,
    );
    for (const raw of RAW_CONTROLS) expect(r.stdout).not.toContain(raw);
    expect(r.stderr).toContain(`describe-image: debug: ${EVIL_SHOWN}: PNG 20×10 `);
    for (const raw of RAW_CONTROLS) expect(r.stderr).not.toContain(raw);
    expect(r.stderr).toContain('2 succeeded');
  });

  it('an image that fails: its name is shown, not obeyed, in the error and the summary', async () => {
    const r = await runOnTerminal(['.'], brokenDir);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('==> plain.png <==\nA cat on a mat.\n');
    const named = r.stderr.split('\n').filter((l) => l.includes(EVIL_SHOWN));
    expect(named).toEqual([
      expect.stringMatching(
        /^describe-image: error: evil\\x1b\]0;owned.*: cannot read the PNG image/,
      ),
      expect.stringMatching(/^ {2}evil\\x1b\]0;owned.*: cannot read the PNG image/),
    ]);
    for (const raw of RAW_CONTROLS) expect(r.stderr).not.toContain(raw);
    expect(r.stderr).toContain('1 succeeded · 1 failed');
  });

  it('the progress line shows the total once counted', async () => {
    // Answers take a moment, so the line is drawn after the count has arrived.
    server.handle(async (req, res, raw) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      await okHandler()(req, res, raw);
    });
    const r = await runOnTerminal(['.', '-c', '1']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\r1\/2 · [\d,]+ tokens · [\d.]+ img\/s · ETA /);
    expect(r.stderr).not.toMatch(/\/\d+\+/);
  });
});

describe('one image on a terminal that asks for no colour', () => {
  // ora colours its spinner with chalk's own level, which comes from the process, not from
  // the run's environment: set it to colour, as on a colour terminal.
  let saved: typeof chalk.level;
  beforeAll(() => {
    saved = chalk.level;
    chalk.level = 3;
  });
  afterAll(() => {
    chalk.level = saved;
  });

  it.each([
    ['NO_COLOR=1', { NO_COLOR: '1', TERM: 'xterm-256color' }],
    ['FORCE_COLOR=0', { FORCE_COLOR: '0', TERM: 'xterm-256color' }],
    ['TERM=dumb', { TERM: 'dumb' }],
  ])('%s: the spinner runs, and nothing on stderr is coloured', async (_name, colour) => {
    server.handle(okHandler());
    const r = await runOnTerminal(['plain.png'], dir, colour);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Asking gpt-4o-2024-08-06…');
    // Cursor moves and line clearing are fine; SGR (ESC [ … m) is colour.
    expect(r.stderr).not.toMatch(SGR);
  });

  it('with colour allowed, the same run is coloured (the check above can see it)', async () => {
    server.handle(okHandler());
    const r = await runOnTerminal(['plain.png'], dir, { TERM: 'xterm-256color' });
    expect(r.code, r.stderr).toBe(0);
    // The first frame of ora's dots, in colour.
    expect(r.stderr).toMatch(new RegExp(`${SGR.source}⠋`));
  });
});
