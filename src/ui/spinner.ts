/**
 * The "waiting for the model" spinner: ora on stderr, loaded only when it will run.
 * The caller decides whether it runs (TTY, not CI, not --quiet or --json), and with what
 * colour level (stderr's, from `colorLevel()`).
 */
import type { OutStream } from '../deps.js';
import { neutralize } from '../output/guard.js';
import type { ColorLevel } from './colors.js';

export interface Spinner {
  /** Stops and clears the spinner; restores the cursor. Safe to call more than once. */
  stop(): void;
  setText(text: string): void;
}

const NOOP: Spinner = { stop() {}, setText() {} };

type TtyLike = OutStream & {
  cursorTo?: (x: number) => unknown;
  moveCursor?: (dx: number, dy: number) => unknown;
  clearLine?: (dir: -1 | 0 | 1) => unknown;
  rows?: number;
  once?: (event: string, listener: () => void) => unknown;
  removeListener?: (event: string, listener: () => void) => unknown;
};

/**
 * What ora needs from a stream. A terminal that reports 0 columns (a pty with no window size,
 * as under `script`) would make ora count Infinity lines to clear and loop forever, so the
 * width falls back to 80.
 */
function oraStream(stream: TtyLike): NodeJS.WritableStream {
  const csi = (code: string) => stream.write(`\x1b[${code}`);
  const adapter = {
    isTTY: true,
    get columns() {
      return stream.columns && stream.columns > 0 ? stream.columns : 80;
    },
    get rows() {
      return stream.rows && stream.rows > 0 ? stream.rows : 24;
    },
    write: (chunk: string) => stream.write(chunk),
    cursorTo: (x: number) => (stream.cursorTo ? stream.cursorTo(x) : csi(`${x + 1}G`)),
    moveCursor: (dx: number, dy: number) => {
      if (stream.moveCursor) return stream.moveCursor(dx, dy);
      if (dx) csi(dx > 0 ? `${dx}C` : `${-dx}D`);
      if (dy) csi(dy > 0 ? `${dy}B` : `${-dy}A`);
      return true;
    },
    clearLine: (dir: -1 | 0 | 1) =>
      stream.clearLine ? stream.clearLine(dir) : csi(dir < 0 ? '1K' : dir > 0 ? '0K' : '2K'),
    once: (event: string, listener: () => void) => stream.once?.(event, listener),
    removeListener: (event: string, listener: () => void) =>
      stream.removeListener?.(event, listener),
  };
  return adapter as unknown as NodeJS.WritableStream;
}

/**
 * Starts the spinner on `stream` when `enabled`. At colour level 0 (NO_COLOR, FORCE_COLOR=0,
 * TERM=dumb…) it draws no colour: ora colours its frame with its own chalk, whose detection
 * knows nothing of our rules, so its colour is turned off rather than left to it.
 */
export async function startSpinner(
  stream: OutStream,
  text: string,
  enabled: boolean,
  level: ColorLevel,
): Promise<Spinner> {
  if (!enabled) return NOOP;
  const { default: ora } = await import('ora');
  const spinner = ora({
    // The text may quote a server or a model name: never a control sequence on the terminal.
    text: neutralize(text),
    stream: oraStream(stream),
    isEnabled: true,
    discardStdin: false,
    color: level === 0 ? false : 'cyan',
  }).start();
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      spinner.stop();
    },
    setText(value) {
      if (!stopped) spinner.text = neutralize(value);
    },
  };
}
