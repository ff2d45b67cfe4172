/** FillPlan: an image shared by documents is described once; each document is ready to write
 * as soon as every image it needs has settled. */
import { describe, expect, it } from 'vitest';
import { decodeDocument } from '../../src/docs/document.js';
import { findImages } from '../../src/docs/find.js';
import { FillPlan, planFill, type DocumentFill } from '../../src/docs/plan.js';

function found(name: string, text: string): DocumentFill {
  const doc = decodeDocument(name, new TextEncoder().encode(text));
  return { doc, images: findImages(doc) };
}

describe('FillPlan', () => {
  const { fills, groups, problems } = planFill(
    [
      found('a.md', '![](shared.png) ![](only-a.png) ![Logo](logo.png)'),
      found('b.html', '<img src="shared.png"><img src="h.png" aria-hidden="true"><img alt="">'),
      found('c.html', '<img src="h.png" role="presentation">'),
      found('d.md', '![](/rooted.png)'),
    ],
    { cwd: '/w' },
  );
  const [a, b, c, d] = fills as [DocumentFill, DocumentFill, DocumentFill, DocumentFill];
  const key = (src: string) => groups.find((g) => g.key.endsWith(src))!.key;

  it('keeps the images a fill writes, and describes each of them once', () => {
    expect(fills.map((f) => f.images.length)).toEqual([2, 2, 1, 1]);
    expect(groups.map((g) => [g.key, g.findings.length])).toEqual([
      ['/w/shared.png', 2],
      ['/w/only-a.png', 1],
    ]);
    expect(problems.map((p) => `${p.finding.file}:${p.finding.line}`)).toEqual(['d.md:1']);
  });

  it('replaces placeholders only when asked', () => {
    const asked = planFill([found('a.md', '![Logo](logo.png)')], { cwd: '/w', placeholders: true });
    expect(asked.groups.map((g) => g.key)).toEqual(['/w/logo.png']);
  });

  it('has the documents that need no description ready at once', () => {
    const plan = new FillPlan([a, b, c, d], groups);
    // c only needs alt=""; d's only image has a source problem and is skipped.
    expect(plan.ready()).toEqual([c, d]);
    expect(plan.choices(c).map((x) => x.alt)).toEqual(['']);
    expect(plan.choices(d)).toEqual([]);
  });

  it('gives each document when its last image settles, with every alt text it gets', () => {
    const plan = new FillPlan([a, b, c, d], groups);
    expect(plan.settle(key('only-a.png'), 'Only in A')).toEqual([]);
    expect(plan.settle(key('shared.png'), 'Shared')).toEqual([a, b]);
    expect(plan.choices(a).map((x) => x.alt)).toEqual(['Shared', 'Only in A']);
    expect(plan.choices(b).map((x) => x.alt)).toEqual(['Shared', '']);
    expect(plan.settle(key('shared.png'), 'again')).toEqual([]);
    expect(plan.settle('no such key', 'x')).toEqual([]);
  });

  it('writes the rest of a document when one of its images failed', () => {
    const plan = new FillPlan([a, b], groups);
    expect(plan.settle(key('shared.png'), undefined)).toEqual([b]);
    expect(plan.choices(b).map((x) => x.alt)).toEqual(['']);
    expect(plan.settle(key('only-a.png'), 'Only in A')).toEqual([a]);
    expect(plan.choices(a).map((x) => x.alt)).toEqual(['Only in A']);
  });
});
