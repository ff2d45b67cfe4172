import { describe, expect, it } from 'vitest';
import type { Usage } from '../../src/api/types.js';
import {
  AnswerWriter,
  formatAnswer,
  formatCount,
  formatUsage,
  header,
} from '../../src/render/text.js';

/** A stream that records each write. */
function sink(): { writes: string[]; text: () => string; write: (s: string) => void } {
  const writes: string[] = [];
  return { writes, text: () => writes.join(''), write: (s: string) => void writes.push(s) };
}

function streamAnswer(
  pieces: readonly string[],
  sanitize: boolean,
): { text: string; writes: string[] } {
  const out = sink();
  const writer = new AnswerWriter(out, sanitize);
  for (const piece of pieces) writer.write(piece);
  writer.end();
  return { text: out.text(), writes: out.writes };
}

describe('formatAnswer', () => {
  it.each([
    ['no trailing newline', 'A red bicycle.', 'A red bicycle.\n'],
    ['one trailing newline', 'A red bicycle.\n', 'A red bicycle.\n'],
    ['several trailing newlines', 'A red bicycle.\n\n\n', 'A red bicycle.\n'],
    ['trailing spaces and newlines', 'A red bicycle.  \n \n\t\n  ', 'A red bicycle.\n'],
    ['leading newlines', '\n\nA red bicycle.', 'A red bicycle.\n'],
    [
      'inner blank lines',
      'Line one.\n\nLine two.\n\n\nLine three.',
      'Line one.\n\nLine two.\n\n\nLine three.\n',
    ],
    ['inner spaces', 'a  b \t c', 'a  b \t c\n'],
    ['leading indentation kept', '    code block\n', '    code block\n'],
  ])('%s', (_name, input, expected) => {
    expect(formatAnswer(input, false)).toBe(expected);
    expect(formatAnswer(input, true)).toBe(expected);
  });

  it('ends with exactly one newline whatever the model sent', () => {
    for (const tail of ['', '\n', '\n\n', ' ', '  \n', '\n \n', '\t\n\n', '\r\n', '\r\n\r\n']) {
      const out = formatAnswer(`Answer.${tail}`, true);
      expect(out, JSON.stringify(tail)).toBe('Answer.\n');
    }
  });

  it('writes nothing for an empty answer', () => {
    expect(formatAnswer('', false)).toBe('');
    expect(formatAnswer('\n\n', false)).toBe('');
    expect(formatAnswer('  \n\t \n', true)).toBe('');
  });

  it('sanitises only when asked', () => {
    const raw = 'a \x1b[31mred\x1b[0m word\x1b]0;title\x07';
    expect(formatAnswer(raw, true)).toBe('a red word\n');
    expect(formatAnswer(raw, false)).toBe(`${raw}\n`);
  });

  it('an answer made only of escape sequences is empty when sanitised', () => {
    expect(formatAnswer('\x1b[2J\x1b[H', true)).toBe('');
  });
});

describe('AnswerWriter', () => {
  const TEXTS = [
    'Hello world',
    '\n\nA photo of a cat.\n\nIt is sleeping on a red sofa.  \n\n\n',
    'Line 1\nLine 2\n\n- item\n- item 2\n\n',
    '  indented\n\n\tand tabbed  \n',
    'Emoji 🐈‍⬛ and 世界\n\n',
    '\n',
    '',
    'x',
  ];

  it.each(TEXTS.map((t) => [JSON.stringify(t), t]))(
    'streaming %s in pieces equals writing it whole',
    (_name, text) => {
      for (const sanitize of [false, true]) {
        const whole = formatAnswer(text, sanitize);
        // Character by character.
        expect(streamAnswer(Array.from(text), sanitize).text).toBe(whole);
        // Two pieces, split at every position.
        for (let at = 0; at <= text.length; at++) {
          expect(
            streamAnswer([text.slice(0, at), text.slice(at)], sanitize).text,
            `split at ${at}`,
          ).toBe(whole);
        }
        // Words and whitespace as separate pieces.
        expect(streamAnswer(text.split(/(\s+)/), sanitize).text).toBe(whole);
      }
    },
  );

  it('streams with escape sequences split across pieces, sanitised', () => {
    const text =
      'The \x1b[1mbold\x1b[0m claim.\n\n\x1b]8;;https://e.example\x1b\\link\x1b]8;;\x1b\\\n\n';
    const whole = formatAnswer(text, true);
    expect(whole).toBe('The bold claim.\n\nlink\n');
    expect(streamAnswer(Array.from(text), true).text).toBe(whole);
    for (let at = 0; at <= text.length; at++) {
      expect(streamAnswer([text.slice(0, at), text.slice(at)], true).text).toBe(whole);
    }
  });

  it('writes text as it arrives, holding back only trailing whitespace', () => {
    const out = sink();
    const writer = new AnswerWriter(out, false);
    writer.write('A cat');
    expect(out.text()).toBe('A cat');
    writer.write(' on a mat.\n\n');
    expect(out.text()).toBe('A cat on a mat.');
    writer.write('It sleeps.');
    expect(out.text()).toBe('A cat on a mat.\n\nIt sleeps.');
    writer.end();
    expect(out.text()).toBe('A cat on a mat.\n\nIt sleeps.\n');
  });

  it('drops leading newlines that arrive in separate pieces', () => {
    expect(streamAnswer(['\n', '\n', '\nHi'], false).text).toBe('Hi\n');
  });

  it('keeps blank lines that arrive in separate pieces after text', () => {
    expect(streamAnswer(['Hi', '\n', '\n', 'there'], false).text).toBe('Hi\n\nthere\n');
  });

  it('writes nothing at all, not even a newline, for an empty answer', () => {
    const { writes } = streamAnswer(['', '\n', '  ', '\n\n'], false);
    expect(writes).toEqual([]);
  });

  it('started is false until text is written', () => {
    const out = sink();
    const writer = new AnswerWriter(out, true);
    expect(writer.started).toBe(false);
    writer.write('\n\n');
    expect(writer.started).toBe(false);
    writer.write('\x1b[31m');
    expect(writer.started).toBe(false);
    writer.write('text');
    expect(writer.started).toBe(true);
  });

  it('without sanitising, escape sequences reach the stream untouched', () => {
    const { text } = streamAnswer(['\x1b[31m', 'red', '\x1b[0m'], false);
    expect(text).toBe('\x1b[31mred\x1b[0m\n');
  });
});

describe('formatUsage', () => {
  it('formats the counts with thousands separators', () => {
    expect(formatUsage({ prompt_tokens: 1250, completion_tokens: 89, total_tokens: 1339 })).toBe(
      'tokens: 1,250 in · 89 out · 1,339 total',
    );
  });

  it('computes the total when total_tokens is missing', () => {
    const usage = { prompt_tokens: 1250, completion_tokens: 89 } as unknown as Usage;
    expect(formatUsage(usage)).toBe('tokens: 1,250 in · 89 out · 1,339 total');
  });

  it('shows the server total when it differs from the sum', () => {
    expect(formatUsage({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 20 })).toBe(
      'tokens: 10 in · 5 out · 20 total',
    );
  });

  it('handles zero and millions', () => {
    expect(formatUsage({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 })).toBe(
      'tokens: 0 in · 0 out · 0 total',
    );
    expect(
      formatUsage({ prompt_tokens: 1_234_567, completion_tokens: 1000, total_tokens: 1_235_567 }),
    ).toBe('tokens: 1,234,567 in · 1,000 out · 1,235,567 total');
  });
});

describe('formatCount and header', () => {
  it('formatCount uses thousands separators', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(1000)).toBe('1,000');
    expect(formatCount(12_345_678)).toBe('12,345,678');
  });

  it('header is head/tail style', () => {
    expect(header('photos/cat.jpg')).toBe('==> photos/cat.jpg <==');
    expect(header('https://example.com/a.png')).toBe('==> https://example.com/a.png <==');
  });
});
