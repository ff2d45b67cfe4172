/**
 * The output layer (src/output/guard.ts): redaction of keys and URL secrets, whole and split
 * across writes; control characters made visible; JSON with C1 and U+2028/9 escaped.
 */
import { describe, expect, it } from 'vitest';
import {
  Redactor,
  displayUrl,
  guardStream,
  neutralize,
  safeJson,
  urlSecrets,
} from '../../src/output/guard.js';

const KEY = 'sk-test-0123456789abcdef';

describe('Redactor', () => {
  it('replaces every occurrence of every secret, on every line', () => {
    const r = new Redactor();
    r.add(KEY);
    r.add('other-secret-value');
    const text = `a ${KEY} b ${KEY}\nc other-secret-value ${KEY}`;
    expect(r.redact(text)).toBe('a *** b ***\nc *** ***');
  });

  it('redacts the URL-encoded form of a secret too', () => {
    const r = new Redactor();
    r.add('p@ss/word+1');
    expect(r.redact('x?key=p%40ss%2Fword%2B1&y')).toBe('x?key=***&y');
  });

  it('ignores empty and too-short values, which would redact ordinary text', () => {
    const r = new Redactor();
    r.add('');
    r.add('  ');
    r.add('abc');
    r.add(undefined);
    expect(r.size).toBe(0);
    expect(r.redact('abc abc')).toBe('abc abc');
  });

  it('replaces a longer secret whole even when a shorter one is inside it', () => {
    const r = new Redactor();
    r.add('abcd');
    r.add('xxabcdyy');
    expect(r.redact('xxabcdyy abcd')).toBe('*** ***');
  });

  it('takes the password and secret parameters of a URL (a user name is no secret)', () => {
    const r = new Redactor();
    r.addUrl(
      'https://user1:pa%24%24word@example.com/v1?key=AIzaSECRET1&api-version=2024&sig=SIGVALUE&token=TOKVALUE',
    );
    const out = r.redact(
      'user1 pa$$word pa%24%24word AIzaSECRET1 SIGVALUE TOKVALUE api-version=2024 example.com',
    );
    expect(out).toBe('user1 *** *** *** *** *** api-version=2024 example.com');
  });

  it('a stream redactor catches a secret split at every position across two pieces', () => {
    const r = new Redactor();
    r.add(KEY);
    const text = `before ${KEY} after`;
    for (let cut = 0; cut <= text.length; cut++) {
      const s = r.stream();
      const out = s.push(text.slice(0, cut)) + s.push(text.slice(cut)) + s.flush();
      expect(out, `cut at ${cut}`).toBe('before *** after');
    }
  });

  it('a stream redactor catches a secret split across every byte', () => {
    const r = new Redactor();
    r.add(KEY);
    const text = `x${KEY}y${KEY}`;
    const s = r.stream();
    let out = '';
    for (const c of text) out += s.push(c);
    out += s.flush();
    expect(out).toBe('x***y***');
  });

  it('a stream redactor holds back only what could start a secret', () => {
    const r = new Redactor();
    r.add(KEY);
    const s = r.stream();
    expect(s.push('hello sk-te')).toBe('hello ');
    expect(s.push('a')).toBe('sk-tea');
    expect(s.push('plain')).toBe('plain');
    expect(s.flush()).toBe('');
  });
});

describe('urlSecrets', () => {
  it('finds nothing in a URL without secrets, or in text that is not a URL', () => {
    expect(urlSecrets('https://api.example.com/v1?api-version=2024-10-21')).toEqual([]);
    expect(urlSecrets('not a url')).toEqual([]);
    expect(urlSecrets(undefined)).toEqual([]);
  });

  it('knows the usual names of secret parameters, in any case', () => {
    for (const name of [
      'key',
      'api-key',
      'api_key',
      'apikey',
      'token',
      'access_token',
      'sig',
      'Signature',
      'X-Amz-Signature',
      'secret',
      'password',
    ]) {
      expect(urlSecrets(`https://h/x?${name}=V4LUE`), name).toEqual(['V4LUE']);
    }
  });
});

describe('displayUrl', () => {
  it('hides the password, the user name and secret parameters, and keeps the rest', () => {
    expect(displayUrl('https://me:pw123@example.com/v1?key=abcdef&api-version=2024-10-21')).toBe(
      'https://***:***@example.com/v1?key=***&api-version=2024-10-21',
    );
  });

  it('drops a trailing slash and leaves text that is not a URL alone', () => {
    expect(displayUrl('https://api.example.com/v1/')).toBe('https://api.example.com/v1');
    expect(displayUrl('nope')).toBe('nope');
  });
});

describe('neutralize', () => {
  it('writes control characters as visible escapes, keeping tab and newline', () => {
    expect(neutralize('a\x1b]0;TITLE\x07b')).toBe('a\\x1b]0;TITLE\\x07b');
    expect(neutralize('\r\x00\x7f\x9b')).toBe('\\x0d\\x00\\x7f\\x9b');
    expect(neutralize('tab\there\nnext')).toBe('tab\there\nnext');
  });

  it('makes bidirectional overrides visible (Trojan Source)', () => {
    expect(neutralize('abc\u202edcb.png')).toBe('abc\\u202edcb.png');
    expect(neutralize('\u2066x\u2069')).toBe('\\u2066x\\u2069');
  });

  it('leaves ordinary text, accents, CJK and emoji as they are', () => {
    const text = 'Café 日本 🐈 "quotes" \\ back';
    expect(neutralize(text)).toBe(text);
  });
});

describe('safeJson', () => {
  it('escapes C0, DEL, C1 and the JavaScript line terminators', () => {
    const json = safeJson({ t: 'a\x1b[2Jb\x7f\x85\x9b\u2028\u2029c' });
    expect(json).toBe('{"t":"a\\u001b[2Jb\\u007f\\u0085\\u009b\\u2028\\u2029c"}');
    expect(JSON.parse(json)).toEqual({ t: 'a\x1b[2Jb\x7f\x85\x9b\u2028\u2029c' });
    // eslint-disable-next-line no-control-regex -- the check is that none remain
    expect(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(json)).toBe(false);
  });

  it('indents when asked, and keeps other text as it is', () => {
    expect(safeJson({ a: 'ü 日本' }, 2)).toBe('{\n  "a": "ü 日本"\n}');
  });
});

describe('guardStream', () => {
  it('redacts what is written, even split across writes, and passes the terminal flags', () => {
    const r = new Redactor();
    r.add(KEY);
    let text = '';
    const inner = { isTTY: true, columns: 77, write: (s: string) => (text += s) };
    const out = guardStream(inner, r);
    expect(out.isTTY).toBe(true);
    expect(out.columns).toBe(77);
    out.write(`key: ${KEY.slice(0, 5)}`);
    out.write(`${KEY.slice(5)}\n`);
    out.write('tail sk-');
    out.flush();
    expect(text).toBe('key: ***\ntail sk-');
  });

  it('a secret added after the stream was made is still redacted', () => {
    const r = new Redactor();
    let text = '';
    const out = guardStream({ write: (s: string) => (text += s) }, r);
    r.add(KEY);
    out.write(`${KEY}\n`);
    expect(text).toBe('***\n');
  });
});
