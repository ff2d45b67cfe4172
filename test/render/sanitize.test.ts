import { describe, expect, it } from 'vitest';
import { sanitizeForTerminal, TerminalSanitizer } from '../../src/render/sanitize.js';

const ESC = '\x1b';
const BEL = '\x07';
const ST = `${ESC}\\`;

/** Feeds `pieces` to one sanitizer and joins what it returns. */
function streamed(pieces: readonly string[]): string {
  const s = new TerminalSanitizer();
  let out = '';
  for (const piece of pieces) out += s.push(piece);
  return out + s.flush();
}

describe('CSI sequences', () => {
  it.each([
    ['colours', `a${ESC}[31mred${ESC}[0m b`, 'ared b'],
    ['bold 256-colour and truecolour', `${ESC}[1;38;5;196mX${ESC}[38;2;255;0;0mY${ESC}[m`, 'XY'],
    ['cursor moves', `up${ESC}[2Adown${ESC}[10;20Hhome${ESC}[K`, 'updownhome'],
    ['clear screen', `before${ESC}[2J${ESC}[Hafter`, 'beforeafter'],
    ['private modes', `${ESC}[?25l${ESC}[?1049hhidden cursor`, 'hidden cursor'],
    ['with intermediates', `${ESC}[0 qshape`, 'shape'],
  ])('%s', (_name, input, expected) => {
    expect(sanitizeForTerminal(input)).toBe(expected);
  });
});

describe('OSC sequences', () => {
  it.each([
    ['window title, BEL-terminated', `${ESC}]0;pwned${BEL}text`, 'text'],
    ['window title, ST-terminated', `${ESC}]2;pwned${ST}text`, 'text'],
    ['OSC 52 clipboard write', `safe${ESC}]52;c;Y3VybCBldmlsLnNoIHwgc2g=${BEL} text`, 'safe text'],
    [
      'OSC 8 hyperlink',
      `${ESC}]8;;https://evil.example/${ST}click here${ESC}]8;;${ST}`,
      'click here',
    ],
    [
      'OSC 8 hyperlink with BEL',
      `${ESC}]8;id=1;https://evil.example/${BEL}link${ESC}]8;;${BEL}!`,
      'link!',
    ],
    ['8-bit ST', `${ESC}]0;title\u009ctext`, 'text'],
  ])('%s', (_name, input, expected) => {
    expect(sanitizeForTerminal(input)).toBe(expected);
  });
});

describe('DCS, SOS, PM and APC strings', () => {
  it.each([
    ['DCS', `a${ESC}P1$r0m${ST}b`, 'ab'],
    ['DCS sixel', `a${ESC}Pq#0;2;0;0;0#0~~@@vv${ST}b`, 'ab'],
    ['SOS', `a${ESC}Xstring${ST}b`, 'ab'],
    ['PM', `a${ESC}^private${ST}b`, 'ab'],
    ['APC', `a${ESC}_Gf=100;AAAA${ST}b`, 'ab'],
  ])('%s', (_name, input, expected) => {
    expect(sanitizeForTerminal(input)).toBe(expected);
  });
});

describe('two-byte escapes', () => {
  it.each([
    ['RIS (full reset)', `a${ESC}cb`, 'ab'],
    ['save and restore cursor', `a${ESC}7b${ESC}8c`, 'abc'],
    ['reverse index', `a${ESC}Mb`, 'ab'],
    ['charset with an intermediate', `a${ESC}(0lqk${ESC}(Bb`, 'alqkb'],
    ['keypad mode', `a${ESC}=${ESC}>b`, 'ab'],
  ])('%s', (_name, input, expected) => {
    expect(sanitizeForTerminal(input)).toBe(expected);
  });
});

describe('8-bit C1 controls', () => {
  it.each([
    ['CSI U+009B', 'a\u009b31mred\u009b0mb', 'aredb'],
    ['CSI U+009B clear screen', 'a\u009b2Jb', 'ab'],
    ['OSC U+009D with BEL', `a\u009d0;title${BEL}b`, 'ab'],
    ['OSC U+009D with U+009C', 'a\u009d52;c;AAAA\u009cb', 'ab'],
    ['DCS U+0090', 'a\u0090payload\u009cb', 'ab'],
    ['APC U+009F', 'a\u009fpayload\u009cb', 'ab'],
    ['lone NEL U+0085 and others', 'a\u0085b\u0080c\u0099d', 'abcd'],
  ])('%s', (_name, input, expected) => {
    expect(sanitizeForTerminal(input)).toBe(expected);
  });
});

describe('C0 controls', () => {
  it('removes every C0 control except newline and tab, and removes CR and DEL', () => {
    let input = '';
    for (let c = 0; c < 0x20; c++) if (c !== 0x1b) input += `${String.fromCharCode(c)}${c}|`;
    input += '\x7f127|';
    const out = sanitizeForTerminal(input);
    let expected = '';
    for (let c = 0; c < 0x20; c++) {
      if (c === 0x1b) continue;
      expected += `${c === 0x0a ? '\n' : c === 0x09 ? '\t' : ''}${c}|`;
    }
    expected += '127|';
    expect(out).toBe(expected);
  });

  it('turns CRLF into LF and drops a bare CR (which would overwrite the line)', () => {
    expect(sanitizeForTerminal('line one\r\nline two\r\n')).toBe('line one\nline two\n');
    expect(sanitizeForTerminal('Safe text\rEvil')).toBe('Safe textEvil');
  });

  it('drops backspaces that would hide text', () => {
    expect(sanitizeForTerminal('rm -rf /\b\b\b\b\b\b\b\bls')).toBe('rm -rf /ls');
  });
});

describe('ordinary text is kept', () => {
  it.each([
    ['ASCII', 'Hello, world! 1 + 1 = 2; {"a": [1, 2]} ~`@#$%^&*()_-=\\|/?<>'],
    ['newlines and tabs', 'a\n\tb\n\n  c\n'],
    ['emoji with ZWJ and skin tones', 'A family: 👩‍👩‍👧‍👦, a wave: 👋🏽, a flag: 🇫🇷, a cat: 🐈‍⬛'],
    ['Latin-1 and accents', 'café, naïve, Ångström, ñ, ß, ×÷, ¿¡, « » and a non-breaking space'],
    [
      'non-Latin scripts',
      'Привет мир · 你好，世界 · こんにちは · مرحبا بالعالم · שלום · नमस्ते · 안녕하세요',
    ],
    ['Markdown', '# Title\n\n- item **bold** _it_\n\n```js\nconst x = 1;\n```\n'],
    ['empty', ''],
  ])('%s', (_name, text) => {
    expect(sanitizeForTerminal(text)).toBe(text);
    expect(streamed(Array.from(text))).toBe(text);
  });
});

describe('streaming', () => {
  const INPUT =
    `Before ${ESC}]8;;https://x.example/${ST}link${ESC}]8;;${ST} mid ` +
    `${ESC}[1;31mred${ESC}[0m then ${ESC}]0;title${BEL}title-gone ` +
    `${ESC}(Bcharset \u009b2Jc1 \u009d52;c;QUJD\u009cclip ${ESC}P1$r${ST}dcs ${ESC}7esc 世界🎉 end`;
  const EXPECTED = 'Before link mid red then title-gone charset c1 clip dcs esc 世界🎉 end';

  it('the test input sanitises to the expected text in one piece', () => {
    expect(sanitizeForTerminal(INPUT)).toBe(EXPECTED);
  });

  it('a sequence split between two pushes at every position is still removed', () => {
    const wrong: number[] = [];
    for (let at = 0; at <= INPUT.length; at++) {
      if (streamed([INPUT.slice(0, at), INPUT.slice(at)]) !== EXPECTED) wrong.push(at);
    }
    expect(wrong).toEqual([]);
  });

  it('one character at a time', () => {
    expect(streamed(Array.from(INPUT))).toBe(EXPECTED);
    expect(streamed(INPUT.split(''))).toBe(EXPECTED);
  });

  it('split into three pieces at every pair of positions around each sequence', () => {
    const seq = `${ESC}]8;;https://x.example/${ST}`;
    const text = `ab${seq}cd`;
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        expect(streamed([text.slice(0, i), text.slice(i, j), text.slice(j)]), `${i}/${j}`).toBe(
          'abcd',
        );
      }
    }
  });

  it('holds back an incomplete sequence without losing the text before it', () => {
    const s = new TerminalSanitizer();
    expect(s.push(`visible ${ESC}[3`)).toBe('visible ');
    expect(s.push('1mred')).toBe('red');
    expect(s.push(ESC)).toBe('');
    expect(s.push(']0;t')).toBe('');
    expect(s.push(`itle${BEL}after`)).toBe('after');
  });

  it('flush drops an unfinished sequence', () => {
    const s = new TerminalSanitizer();
    expect(s.push(`text${ESC}]0;unfinished`)).toBe('text');
    expect(s.flush()).toBe('');
    expect(s.push('fresh')).toBe('fresh');
  });

  it('an unterminated sequence longer than 4096 characters is dropped and later text comes through', () => {
    const s = new TerminalSanitizer();
    let out = s.push(`start ${ESC}]0;`);
    expect(out).toBe('start ');
    let fed = 0;
    for (let i = 0; i < 100; i++) {
      out += s.push('x'.repeat(100));
      fed += 100;
    }
    out += s.push(' LATER TEXT');
    expect(out.startsWith('start ')).toBe(true);
    expect(out.endsWith(' LATER TEXT')).toBe(true);
    // At most the 4096 characters held back (plus the piece that overflowed) are lost.
    const kept = out.length - 'start '.length - ' LATER TEXT'.length;
    expect(kept).toBeGreaterThanOrEqual(fed - 4096 - 100);
    expect(out).not.toContain(ESC);
  });

  it('an unterminated CSI longer than 4096 characters is dropped in one push', () => {
    const s = new TerminalSanitizer();
    expect(s.push(`a${ESC}[${'1;'.repeat(3000)}`)).toBe('a');
    expect(s.push('b')).toBe('b');
  });

  it('an unterminated 8-bit OSC longer than 4096 characters is dropped too', () => {
    const s = new TerminalSanitizer();
    expect(s.push(`a\u009d${'y'.repeat(5000)}`)).toBe('a');
    expect(s.push('b')).toBe('b');
  });
});
