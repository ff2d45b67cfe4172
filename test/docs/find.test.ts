/**
 * The finders: every form an image takes in Markdown, MDX and HTML, every place that looks
 * like an image and is not one, the state of each alt text, and where each image is.
 */
import { describe, expect, it } from 'vitest';
import { decodeDocument } from '../../src/docs/document.js';
import { findImages, needsModel, needsText } from '../../src/docs/find.js';
import { InputError } from '../../src/errors.js';
import type { ImageFinding } from '../../src/docs/types.js';

const EXT = { markdown: 'md', mdx: 'mdx', html: 'html' } as const;

function find(kind: keyof typeof EXT, text: string): ImageFinding[] {
  return findImages(decodeDocument(`docs/page.${EXT[kind]}`, new TextEncoder().encode(text)));
}

/** `src alt-state` for each image found, in order. */
function summary(kind: keyof typeof EXT, text: string): string[] {
  return find(kind, text).map((i) => `${i.src} ${i.alt}`);
}

describe('Markdown images', () => {
  it('finds inline images, with or without a description', () => {
    expect(summary('markdown', '![](a.png) ![A chart](b.png) ![ ](c.png) ![*](d.png)')).toEqual([
      'a.png missing',
      'b.png present',
      'c.png missing',
      'd.png present',
    ]);
  });

  it('finds reference images whose definition is far from their use', () => {
    const text = `![][shot] and ![Real text][shot]\n\n${'Filler paragraph.\n\n'.repeat(50)}[shot]: img/shot.png "Shot"\n`;
    const images = find('markdown', text);
    expect(images.map((i) => `${i.src} ${i.alt} ${i.context.title ?? ''}`)).toEqual([
      'img/shot.png missing Shot',
      'img/shot.png present Shot',
    ]);
    expect(images[0]!.target).toEqual({ kind: 'markdown', start: 2, end: 2, mdx: false });
  });

  it('records the label of collapsed and shortcut references, whose description it is', () => {
    const images = find('markdown', 'A ![logo][] and ![logo] here.\n\n[logo]: brand/logo.svg\n');
    expect(images.map((i) => [i.alt, i.currentAlt, i.target])).toEqual([
      [
        'placeholder',
        'logo',
        {
          kind: 'markdown',
          start: 4,
          end: 8,
          mdx: false,
          reference: { type: 'collapsed', label: 'logo', end: 11 },
        },
      ],
      [
        'placeholder',
        'logo',
        {
          kind: 'markdown',
          start: 18,
          end: 22,
          mdx: false,
          reference: { type: 'shortcut', label: 'logo', end: 23 },
        },
      ],
    ]);
  });

  it('does not take a reference without a definition for an image', () => {
    expect(find('markdown', '![][nowhere] and ![nowhere]\n')).toEqual([]);
  });

  it('finds raw HTML images, inline and as blocks, also inside a block quote', () => {
    const text =
      'Text <img src="a.png"> text.\n\n<div>\n<IMG SRC=b.png>\n</div>\n\n> <img\n> src="c.png">\n';
    const images = find('markdown', text);
    expect(images.map((i) => `${i.src} ${i.alt} ${i.line}:${i.column}`)).toEqual([
      'a.png missing 1:6',
      'b.png missing 4:1',
      'c.png missing 7:3',
    ]);
    // The quote's `> ` prefix is not part of the tag: the alt goes after the real attribute.
    const quoted = images[2]!.target;
    expect(quoted.kind === 'html' && text.slice(quoted.insertAt - 7, quoted.insertAt)).toBe(
      '"c.png"',
    );
  });

  it.each([
    ['a fenced code block', '```\n![](a.png)\n<img src="b.png">\n```\n'],
    ['a tilde fence', '~~~md\n![](a.png)\n~~~\n'],
    ['an indented code block', 'Text.\n\n    ![](a.png)\n    <img src="b.png">\n'],
    ['inline code', 'Use `![](a.png)` or ``<img src="b.png">``.\n'],
    ['an inline HTML comment', 'Text <!-- ![](a.png) <img src="b.png"> --> text.\n'],
    ['an HTML comment block', '<!--\n![](a.png)\n<img src="b.png">\n-->\n'],
    ['front matter', '---\nimage: a.png\ncover: "![](b.png)"\n---\n\n# Title\n'],
    ['TOML front matter', '+++\nimage = "![](a.png)"\n+++\n'],
    ['an escaped image', '\\![](a.png) and !\\[](b.png)\n'],
    ['a link, not an image', '[](a.png) [text](b.png)\n'],
  ])('finds nothing in %s', (_name, text) => {
    expect(find('markdown', text)).toEqual([]);
  });

  it('gives each image its heading, the sentence before it and the link it is in', () => {
    const text =
      '# Setup\n\nInstall it first. Then open the settings:\n\n[![](gear.png)](https://example.com/settings)\n\n## Later\n\n| a | b |\n|---|---|\n| ![](cell.png) | x |\n';
    expect(find('markdown', text).map((i) => i.context)).toEqual([
      {
        heading: 'Setup',
        before: 'Install it first. Then open the settings:',
        link: 'https://example.com/settings',
      },
      { heading: 'Later', before: 'a b' },
    ]);
  });

  it('uses the definition of a reference link around an image as its link', () => {
    const [image] = find(
      'markdown',
      '[![][badge]][ci]\n\n[badge]: b.svg\n[ci]: https://ci.example.com\n',
    );
    expect(image!.context.link).toBe('https://ci.example.com');
  });

  it('takes an image marked decorative on its line as decorative', () => {
    expect(
      summary(
        'markdown',
        [
          '![](a.png) <!-- decorative -->',
          '![](b.png)',
          '<!-- decorative -->',
          '',
          '![](c.png) ![](d.png) <!--Decorative-->',
          '![](e.png) <!-- markdownlint-disable-line MD045 -->',
          '![](f.png) <!-- markdownlint-disable-line no-alt-text MD013 -->',
          '![](g.png) <!-- markdownlint-disable-line -->',
          '![](h.png) <!-- markdownlint-disable-line MD013 -->',
          '![](i.png) <!-- not decorative -->',
          '',
          '<p><img src="j.png"> <!-- decorative --></p>',
          '',
        ].join('\n'),
      ),
    ).toEqual([
      'a.png decorative',
      'b.png missing',
      'c.png decorative',
      'd.png decorative',
      'e.png decorative',
      'f.png decorative',
      'g.png decorative',
      'h.png missing',
      'i.png missing',
      'j.png decorative',
    ]);
  });

  it('counts lines and columns as editors do: CRLF, a BOM, characters outside the BMP', () => {
    const text = '\ufeff# Tïtle 😀\r\n\r\nSee 😀 ![](a.png)\r\n';
    const [image] = find('markdown', text);
    expect([image!.line, image!.column]).toEqual([3, 8]);
  });
});

describe('MDX images', () => {
  it('finds Markdown images and JSX <img>, and leaves an alt set by code alone', () => {
    const text = [
      'import { x } from "./x"',
      '',
      '<img src="a.png" />',
      '',
      '<img src="b.png" alt={x.alt} />',
      '',
      '<img src="c.png" {...props} />',
      '',
      '<img src="d.png" alt="" />',
      '',
      '<img src="e.png" alt />',
      '',
      '<img src={x.src} alt="A sunset over the bay" />',
      '',
      '<Img src="f.png" />',
      '',
      '![](g.png) {/* decorative */}',
      '',
      '```jsx',
      '<img src="h.png" />',
      '```',
      '',
      'Inline <img src="i.png"/> too.',
      '',
    ].join('\n');
    expect(summary('mdx', text)).toEqual([
      'a.png missing',
      'b.png dynamic',
      'c.png dynamic',
      'd.png decorative',
      'e.png missing',
      '{x.src} present',
      'g.png decorative',
      'i.png missing',
    ]);
  });

  it('reports MDX that does not parse with its place', () => {
    expect(() => find('mdx', '# Title\n\n<img src="a.png" alt="x" \\" />\n')).toThrow(InputError);
    expect(() => find('mdx', '# Title\n\n<img src="a.png" alt="x" \\" />\n')).toThrow(
      /^docs\/page\.mdx:3:\d+: cannot parse it as MDX: /,
    );
  });
});

describe('HTML images', () => {
  it('tells missing, empty, valueless and present alt apart', () => {
    expect(
      summary(
        'html',
        '<img src="a.png"><img src="b.png" alt=""><img src="c.png" alt><img src="d.png" alt=" "><img src="e.png" alt="Harbour at dawn">',
      ),
    ).toEqual([
      'a.png missing',
      'b.png decorative',
      'c.png decorative',
      'd.png decorative',
      'e.png present',
    ]);
  });

  it('reads tags and attributes in any case, quoted or not', () => {
    const images = find('html', "<IMG SRC=a.png WIDTH=3>\n<Img Src='b.png' ALT='Sea'>");
    expect(images.map((i) => `${i.src} ${i.alt} ${i.line}:${i.column}`)).toEqual([
      'a.png missing 1:1',
      'b.png present 2:1',
    ]);
  });

  it('finds image buttons and linked map areas, which need a non-empty alt', () => {
    const text =
      '<form><input type="IMAGE" src="go.png"><input type="text"><input type=image src="ok.png" alt=""></form>' +
      '<img src="map.png" usemap="#m" alt="Coast"><map name="m"><area href="/n" coords="1,2,3"><area coords="4,5,6"><area href="/s" alt="South"></map>';
    expect(
      find('html', text).map((i) => `${i.element} ${i.src} ${i.alt} ${i.context.link ?? ''}`),
    ).toEqual([
      'input go.png missing ',
      'input ok.png missing ',
      'img map.png present ',
      'area map.png missing /n',
      'area map.png present /s',
    ]);
  });

  it('takes the source of an image in <picture> from its src, else from a srcset', () => {
    const text =
      '<picture><source srcset="a.avif 1x, a2.avif 2x"><img src="a.jpg"></picture>' +
      '<picture><source srcset="b.webp"><img srcset="b.png 1x, b2.png 2x"></picture>' +
      '<picture><source srcset="c.webp 1x, c2.webp 2x"><img></picture>';
    expect(summary('html', text)).toEqual(['a.jpg missing', 'b.png missing', 'c.webp missing']);
  });

  it.each([
    ['a comment', '<!-- <img src="a.png"> -->'],
    ['a script', '<script>document.write("<img src=a.png>")</script>'],
    ['a style', '<style>/* <img src="a.png"> */</style>'],
    ['a textarea', '<textarea><img src="a.png"></textarea>'],
    ['the title', '<title><img src="a.png"></title>'],
    ['an <area> without href', '<map name="m"><area coords="1,2,3"></map>'],
  ])('finds nothing in %s', (_name, text) => {
    expect(find('html', text)).toEqual([]);
  });

  it('finds images in <template> and <noscript>, which can be shown', () => {
    expect(
      summary(
        'html',
        '<template><img src="t.png"></template><noscript><img src="n.png"></noscript>',
      ),
    ).toEqual(['t.png missing', 'n.png missing']);
  });

  it('takes an image hidden from assistive technology without alt as decorative to mark', () => {
    expect(
      summary(
        'html',
        '<img src="a.png" aria-hidden="true"><img src="b.png" role="presentation"><img src="c.png" role=none>',
      ),
    ).toEqual([
      'a.png unmarked-decorative',
      'b.png unmarked-decorative',
      'c.png unmarked-decorative',
    ]);
  });

  it('takes an alt that only repeats the file name, or says "image", as a placeholder', () => {
    expect(
      summary(
        'html',
        '<img src="img/hero-banner.jpg" alt="hero banner"><img src="x.png" alt="Image"><img src="y.png" alt="y.png"><img src="z.png" alt="Zebra">',
      ),
    ).toEqual([
      'img/hero-banner.jpg placeholder',
      'x.png placeholder',
      'y.png placeholder',
      'z.png present',
    ]);
  });

  it('gives each image its heading, sentence, link, caption, title and role', () => {
    const text =
      '<h1>Stations</h1><p>Pick one. <a href="/north"><img src="n.png" title="North"></a></p>' +
      '<figure><img src="f.png"><figcaption>Levels this week</figcaption></figure>';
    expect(find('html', text).map((i) => i.context)).toEqual([
      { heading: 'Stations', before: 'Stations Pick one.', link: '/north', title: 'North' },
      { heading: 'Stations', before: 'Stations Pick one.', caption: 'Levels this week' },
    ]);
  });
});

describe('needsText and needsModel', () => {
  const [missing, decorative, hidden, placeholder, present] = find(
    'html',
    '<img src="a.png"><img src="b.png" alt=""><img src="c.png" aria-hidden="true"><img src="d.png" alt="d"><img src="e.png" alt="Eel">',
  );

  it('fill missing alt texts, hidden images with alt="", and placeholders when asked', () => {
    expect([missing, decorative, hidden, placeholder, present].map((i) => needsText(i!))).toEqual([
      true,
      false,
      true,
      false,
      false,
    ]);
    expect(needsText(placeholder!, { placeholders: true })).toBe(true);
    expect(needsModel(hidden!)).toBe(false);
    expect(needsModel(missing!)).toBe(true);
  });
});
