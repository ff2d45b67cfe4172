/** The alt-text prompt and the final check on every answer. */
import { describe, expect, it } from 'vitest';
import { decodeDocument } from '../../src/docs/document.js';
import { findImages } from '../../src/docs/find.js';
import { altPrompt, finalizeAlt, MAX_ALT } from '../../src/docs/prompt.js';

function findings(name: string, text: string) {
  return findImages(decodeDocument(name, new TextEncoder().encode(text)));
}

describe('altPrompt', () => {
  it('asks by the WCAG and WAI rules', () => {
    const prompt = altPrompt({ findings: findings('a.md', '![](a.png)') });
    expect(prompt).toMatch(/for on this page/);
    expect(prompt).toMatch(/where it goes or what it does/);
    expect(prompt).toMatch(/mainly text/);
    expect(prompt).toMatch(/"image of"/);
    expect(prompt).toMatch(/at most 150 characters/);
  });

  it('gives the heading, the sentence before and the link target', () => {
    const prompt = altPrompt({
      findings: findings(
        'a.md',
        '# Downloads\n\nGet the annual report here:\n\n[![](pdf.png)](https://e.com/report.pdf)\n',
      ),
    });
    expect(prompt).toContain('Section heading: Downloads');
    expect(prompt).toContain('Text just before the image: Get the annual report here:');
    expect(prompt).toContain('The image is a link to: https://e.com/report.pdf');
  });

  it('says a button is a button, and a map area is a link', () => {
    const [button, , area] = findings(
      'a.html',
      '<input type=image src=go.png><img src=m.png usemap=#m alt=Map><map name=m><area href=/north></map>',
    );
    expect(altPrompt({ findings: [button!] })).toContain('submit button');
    expect(altPrompt({ findings: [area!] })).toContain('image map, linking to: /north');
  });

  it('gives the context of up to three places when an image is used in many', () => {
    const many = findings(
      'a.md',
      '# One\n\n![](x.png)\n\n# Two\n\n![](x.png)\n\n# Three\n\n![](x.png)\n\n# Four\n\n![](x.png)\n',
    );
    const prompt = altPrompt({ findings: many });
    expect(prompt).toContain('used in 4 places');
    expect(prompt).toContain('- a.md:3');
    expect(prompt).toContain('Section heading: Three');
    expect(prompt).not.toContain('Four');
  });
});

describe('finalizeAlt', () => {
  it.each([
    ['  A ginger cat\n asleep on a sofa.  ', 'A ginger cat asleep on a sofa.'],
    ['"A ginger cat"', 'A ginger cat'],
    ['Alt text: “Harbour at dawn”', 'Harbour at dawn'],
    ['Image of a harbour at dawn', 'A harbour at dawn'],
    ['A photo showing three boats', 'Three boats'],
    ['Photograph of the team', 'The team'],
    ['Download the report', 'Download the report'],
  ])('%j → %j', (answer, text) => {
    expect(finalizeAlt(answer)).toEqual({ ok: true, text, shortened: false });
  });

  it.each(['', '   ', '""', 'decorative', 'None.'])(
    'refuses %j: decorative is the author’s call',
    (answer) => {
      expect(finalizeAlt(answer)).toEqual({ ok: false, reason: 'the model gave no alt text' });
    },
  );

  it('cuts a long answer after its last whole sentence that fits', () => {
    const first = 'Water levels at the north pier rose through the week. '.repeat(3).trim();
    const answer = `${first} ${'And then a very long second part that goes on. '.repeat(5)}`;
    const result = finalizeAlt(answer);
    expect(result.ok && result.shortened).toBe(true);
    expect(result.ok && result.text.length).toBeLessThanOrEqual(MAX_ALT);
    expect(result.ok && result.text.endsWith('.')).toBe(true);
    expect(result.ok && result.text.startsWith(first)).toBe(true);
  });

  it('cuts one long sentence at a word, with an ellipsis', () => {
    const result = finalizeAlt(`A chart ${'with many words '.repeat(30)}`);
    expect(result.ok && result.text.length).toBeLessThanOrEqual(MAX_ALT);
    expect(result.ok && result.text).toMatch(/ words…$/);
  });

  it('keeps an answer of exactly 250 characters', () => {
    const answer = `${'x'.repeat(MAX_ALT - 1)}.`;
    expect(finalizeAlt(answer)).toEqual({ ok: true, text: answer, shortened: false });
  });
});
