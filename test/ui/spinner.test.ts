/**
 * The spinner (src/ui/spinner.ts) on a fake terminal: it draws its frame and text, moves the
 * cursor, and colours the frame only when stderr's colour level allows. ora colours with its
 * own chalk, whose level comes from the process, not from NO_COLOR and our other rules: the
 * tests set that chalk to colour, as on a colour terminal, so a spinner that left its colour
 * to ora would show it.
 */
import chalk from 'chalk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSpinner } from '../../src/ui/spinner.js';
import { collector, SGR } from '../helpers/streams.js';

let saved: typeof chalk.level;
beforeEach(() => {
  saved = chalk.level;
  chalk.level = 3;
});
afterEach(() => {
  chalk.level = saved;
});

async function spin(level: 0 | 1 | 2 | 3): Promise<string> {
  const stderr = collector({ isTTY: true, columns: 80 });
  const spinner = await startSpinner(stderr, 'Asking gpt-4o…', true, level);
  spinner.setText('Asking gpt-4o… still');
  spinner.stop();
  return stderr.text;
}

describe('startSpinner', () => {
  it('at colour level 0 draws the spinner with no colour (cursor moves only)', async () => {
    const text = await spin(0);
    expect(text).toContain('Asking gpt-4o…');
    expect(text).toContain('\x1b[?25l');
    expect(text).not.toMatch(SGR);
  });

  it.each([1, 2, 3] as const)('at colour level %i colours the frame', async (level) => {
    const text = await spin(level);
    expect(text).toContain('Asking gpt-4o…');
    expect(text).toMatch(SGR);
  });

  it('draws nothing when not enabled', async () => {
    const stderr = collector({ isTTY: true, columns: 80 });
    const spinner = await startSpinner(stderr, 'Asking…', false, 3);
    spinner.setText('x');
    spinner.stop();
    expect(stderr.text).toBe('');
  });
});
