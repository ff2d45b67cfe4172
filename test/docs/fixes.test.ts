/**
 * The decide step: escaping for each place an alt text goes, the fixes for each form of
 * image, and applying fixes from the end backwards.
 */
import { describe, expect, it } from 'vitest';
import { decodeDocument } from '../../src/docs/document.js';
import { findImages } from '../../src/docs/find.js';
import {
  altFixes,
  applyFixes,
  documentFixes,
  escapeAttribute,
  escapeMarkdownDescription,
} from '../../src/docs/fixes.js';

function fill(name: string, text: string, alt: string, which = 0): string {
  const doc = decodeDocument(name, new TextEncoder().encode(text));
  const image = findImages(doc)[which]!;
  return applyFixes(doc.text, altFixes(image, alt));
}

/** The alt text a filled document's image reads back as. */
function readBack(name: string, text: string, which = 0): string | undefined {
  return findImages(decodeDocument(name, new TextEncoder().encode(text)))[which]?.currentAlt;
}

describe('escaping', () => {
  it('backslash-escapes what Markdown would read as syntax in a description', () => {
    expect(escapeMarkdownDescription('a [b] *c* _d_ `e` <f> & g | h ~i~ \\ j')).toBe(
      'a \\[b\\] \\*c\\* \\_d\\_ \\`e\\` \\<f\\> \\& g \\| h \\~i\\~ \\\\ j',
    );
    expect(escapeMarkdownDescription('Plain text, (2024): 5% up. Done!')).toBe(
      'Plain text, (2024): 5% up. Done!',
    );
  });

  it('escapes braces too in MDX', () => {
    expect(escapeMarkdownDescription('{x}', true)).toBe('\\{x\\}');
    expect(escapeMarkdownDescription('{x}', false)).toBe('{x}');
  });

  it('puts an answer on one line', () => {
    expect(escapeMarkdownDescription('  two\r\nlines\n\n ')).toBe('two lines');
    expect(escapeAttribute('two\nlines')).toBe('two lines');
  });

  it('escapes & and the quote in use in an attribute, and | inside Markdown', () => {
    expect(escapeAttribute(`Tom & "Jerry's" | <b>`)).toBe(`Tom &amp; &quot;Jerry's&quot; | <b>`);
    expect(escapeAttribute(`Tom & "Jerry's"`, "'")).toBe(`Tom &amp; "Jerry&#39;s"`);
    expect(escapeAttribute('a | b', '"', true)).toBe('a &#124; b');
  });

  it.each([
    ['guide.md', '![](x.png)', 'a [b] *c* _d_ `e` <f> &amp; | \\ ~g~ {h} é 😀'],
    ['guide.md', '| a |\n|---|\n| ![](x.png) |', 'one | two'],
    ['guide.md', '<img src="x.png">', `"q" 'a' &amp; | <t>`],
    ['guide.md', '| a |\n|---|\n| <img src="x.png"> |', 'one | two'],
    ['page.mdx', '![](x.png)', '{x} <y> [z] *w*'],
    ['page.mdx', '<img src="x.png" />', `"q" 'a' &amp; {b} <c>`],
    ['page.html', '<img src=x.png>', `"q" 'a' &amp; &lt;`],
    ['page.html', "<img src=x.png alt='x'>", `"q" 'a' &amp;`],
  ])('%s: %s reads back exactly what was written', (name, text, alt) => {
    const out = fill(name, text, alt);
    expect(readBack(name, out)).toBe(alt);
  });
});

describe('fixes', () => {
  it('fills an empty Markdown description in place, title and all kept', () => {
    expect(fill('a.md', '![](x.png "Title")', 'A chart')).toBe('![A chart](x.png "Title")');
    expect(fill('a.md', '![][ref]\n\n[ref]: x.png', 'A chart')).toBe(
      '![A chart][ref]\n\n[ref]: x.png',
    );
  });

  it('keeps a collapsed or shortcut reference resolving by making it a full one', () => {
    const defs = '\n\n[logo]: logo.png\n';
    expect(fill('a.md', `![logo]${defs}`, 'Tidewater')).toBe(`![Tidewater][logo]${defs}`);
    expect(fill('a.md', `![logo][]${defs}`, 'Tidewater')).toBe(`![Tidewater][logo]${defs}`);
    expect(fill('a.md', `![LOGO][] x${defs}`, 'Tidewater')).toBe(`![Tidewater][LOGO] x${defs}`);
    const out = fill('a.md', `![logo]${defs}`, 'Tidewater');
    expect(findImages(decodeDocument('a.md', new TextEncoder().encode(out)))[0]!.src).toBe(
      'logo.png',
    );
  });

  it('adds alt after the last attribute of an HTML tag, before / or >', () => {
    expect(fill('a.html', '<img src="x.png" width=3 />', 'Sea')).toBe(
      '<img src="x.png" width=3 alt="Sea" />',
    );
    expect(fill('a.html', '<IMG SRC=x.png\n  WIDTH=3>', 'Sea')).toBe(
      '<IMG SRC=x.png\n  WIDTH=3 alt="Sea">',
    );
    expect(fill('a.html', '<img\tsrc=x.png>', 'Sea')).toBe('<img\tsrc=x.png alt="Sea">');
  });

  it('sets an existing value in place, keeping its quotes, or quoting an unquoted one', () => {
    expect(fill('a.html', "<img alt='x' src=x.png>", "It's")).toBe(
      "<img alt='It&#39;s' src=x.png>",
    );
    expect(fill('a.html', '<img ALT=x src=x.png>', 'Sea')).toBe('<img ALT="Sea" src=x.png>');
    expect(fill('a.html', '<input type=image src=go.png alt>', 'Search')).toBe(
      '<input type=image src=go.png alt="Search">',
    );
    expect(fill('a.html', '<input type=image src=go.png alt="">', 'Search')).toBe(
      '<input type=image src=go.png alt="Search">',
    );
  });

  it('writes alt="" for a hidden image, and never an empty Markdown description', () => {
    expect(fill('a.html', '<img src=x.png aria-hidden=true>', '')).toBe(
      '<img src=x.png aria-hidden=true alt="">',
    );
    const doc = decodeDocument('a.md', new TextEncoder().encode('![](x.png)'));
    expect(() => altFixes(findImages(doc)[0]!, '  ')).toThrow(/empty/);
  });

  it('adds alt to a JSX element spread over lines', () => {
    expect(fill('a.mdx', '<img\n  src="x.png"\n  width={3}\n/>\n', 'Sea')).toBe(
      '<img\n  src="x.png"\n  width={3} alt="Sea"\n/>\n',
    );
  });

  it('applies fixes from the end, so earlier offsets stay valid', () => {
    expect(
      applyFixes('0123456789', [
        { offset: 2, length: 0, text: 'ab' },
        { offset: 8, length: 2, text: 'X' },
        { offset: 5, length: 1, text: '' },
      ]),
    ).toBe('01ab23467X');
  });

  it('refuses overlapping fixes', () => {
    expect(() =>
      applyFixes('0123456789', [
        { offset: 2, length: 3, text: 'a' },
        { offset: 4, length: 1, text: 'b' },
      ]),
    ).toThrow(/overlapping/);
  });

  it('puts every image of a document in order', () => {
    const doc = decodeDocument('a.md', new TextEncoder().encode('![](a.png) ![](b.png)'));
    const [a, b] = findImages(doc);
    const fixes = documentFixes([
      { image: b!, alt: 'B' },
      { image: a!, alt: 'A' },
    ]);
    expect(fixes.map((f) => f.offset)).toEqual([2, 13]);
    expect(applyFixes(doc.text, fixes)).toBe('![A](a.png) ![B](b.png)');
  });
});
