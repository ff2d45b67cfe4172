import { describe, expect, it } from 'vitest';
import { colorLevel, isCI, painterFor, PLAIN } from '../../src/ui/colors.js';

type Env = Record<string, string | undefined>;

const tty = (env: Env, quiet = false): number => colorLevel({ env, isTTY: true, quiet });
const pipe = (env: Env): number => colorLevel({ env, isTTY: false });

describe('colorLevel', () => {
  it('NO_COLOR beats FORCE_COLOR', () => {
    expect(tty({ NO_COLOR: '1', FORCE_COLOR: '3' })).toBe(0);
    expect(pipe({ NO_COLOR: '1', FORCE_COLOR: '1' })).toBe(0);
    expect(tty({ NO_COLOR: '1', COLORTERM: 'truecolor', TERM: 'xterm-256color' })).toBe(0);
  });

  it('any non-empty NO_COLOR turns colour off; an empty one does not', () => {
    expect(tty({ NO_COLOR: '0', TERM: 'xterm' })).toBe(0);
    expect(tty({ NO_COLOR: 'false', TERM: 'xterm' })).toBe(0);
    expect(tty({ NO_COLOR: '', TERM: 'xterm' })).toBe(1);
  });

  it.each([
    ['0', 0],
    ['false', 0],
    ['1', 1],
    ['true', 1],
    ['', 1],
    ['2', 2],
    ['3', 3],
  ])('FORCE_COLOR=%j → %i, even when not a TTY', (value, level) => {
    expect(pipe({ FORCE_COLOR: value })).toBe(level);
    expect(tty({ FORCE_COLOR: value, TERM: 'dumb' })).toBe(level);
  });

  it('FORCE_COLOR beats CI', () => {
    expect(pipe({ FORCE_COLOR: '2', CI: 'true' })).toBe(2);
  });

  it('FORCE_COLOR=0 beats a truecolor terminal', () => {
    expect(tty({ FORCE_COLOR: '0', COLORTERM: 'truecolor' })).toBe(0);
  });

  it('not a TTY → 0', () => {
    expect(pipe({})).toBe(0);
    expect(pipe({ TERM: 'xterm-256color', COLORTERM: 'truecolor' })).toBe(0);
  });

  it('CI → 0', () => {
    expect(tty({ CI: 'true', TERM: 'xterm-256color' })).toBe(0);
    expect(tty({ CI: '1', COLORTERM: 'truecolor' })).toBe(0);
  });

  it('CI=0, CI=false and an empty CI are not CI', () => {
    expect(tty({ CI: '0', TERM: 'xterm' })).toBe(1);
    expect(tty({ CI: 'false', TERM: 'xterm' })).toBe(1);
    expect(tty({ CI: '', TERM: 'xterm' })).toBe(1);
  });

  it('TERM=dumb → 0', () => {
    expect(tty({ TERM: 'dumb' })).toBe(0);
  });

  it('quiet → 0, whatever else is set', () => {
    expect(tty({ TERM: 'xterm-256color', COLORTERM: 'truecolor' }, true)).toBe(0);
    expect(tty({ FORCE_COLOR: '3' }, true)).toBe(0);
  });

  it('COLORTERM=truecolor (or 24bit) → 3', () => {
    expect(tty({ COLORTERM: 'truecolor', TERM: 'xterm-256color' })).toBe(3);
    expect(tty({ COLORTERM: '24bit' })).toBe(3);
  });

  it('TERM=xterm-256color → 2', () => {
    expect(tty({ TERM: 'xterm-256color' })).toBe(2);
    expect(tty({ TERM: 'screen-256color' })).toBe(2);
    expect(tty({ TERM: 'tmux-256color' })).toBe(2);
  });

  it('a plain terminal → 1', () => {
    expect(tty({ TERM: 'xterm' })).toBe(1);
    expect(tty({})).toBe(1);
  });
});

describe('isCI', () => {
  it('reads CI', () => {
    expect(isCI({ CI: 'true' })).toBe(true);
    expect(isCI({ CI: '1' })).toBe(true);
    expect(isCI({ CI: 'woodpecker' })).toBe(true);
    expect(isCI({})).toBe(false);
    expect(isCI({ CI: '' })).toBe(false);
    expect(isCI({ CI: '0' })).toBe(false);
    expect(isCI({ CI: 'false' })).toBe(false);
  });
});

describe('painterFor', () => {
  it('paints at the computed level', async () => {
    const truecolor = await painterFor({ env: { COLORTERM: 'truecolor' }, isTTY: true });
    expect(truecolor.level).toBe(3);
    expect(truecolor.paint('x', 'bold-red')).toBe('\x1b[31m\x1b[1mx\x1b[22m\x1b[39m');
    expect(truecolor.paint('x', undefined)).toBe('x');
    const forced = await painterFor({ env: { FORCE_COLOR: '1' }, isTTY: false });
    expect(forced.level).toBe(1);
    expect(forced.paint('x', 'red')).toBe('\x1b[31mx\x1b[39m');
    expect(forced.paint('x', 'dim')).toBe('\x1b[2mx\x1b[22m');
    expect(forced.paint('x', 'green')).toBe('\x1b[32mx\x1b[39m');
    expect(forced.paint('x', 'yellow')).toBe('\x1b[33mx\x1b[39m');
  });

  it('without colour is PLAIN, which leaves text alone and needs no chalk', async () => {
    expect(await painterFor({ env: { NO_COLOR: '1' }, isTTY: true })).toBe(PLAIN);
    expect(await painterFor({ env: {}, isTTY: false })).toBe(PLAIN);
    expect(await painterFor({ env: {}, isTTY: true, quiet: true })).toBe(PLAIN);
    expect(PLAIN.level).toBe(0);
    expect(PLAIN.paint('x', 'red')).toBe('x');
  });
});
