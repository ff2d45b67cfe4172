/**
 * Pure: the bookkeeping of a fill across documents. Each image is described once (its group),
 * and a document is ready to write as soon as every group it needs has settled, so that a run
 * stopped half-way leaves every document either filled or untouched.
 */
import { needsModel, needsText, type FillScope } from './find.js';
import type { AltChoice } from './fixes.js';
import {
  groupImages,
  type FindingProblem,
  type ImageGroup,
  type ResolveOptions,
} from './sources.js';
import type { ImageFinding, SourceDocument } from './types.js';

/** A document and the images of it that a fill writes. */
export interface DocumentFill {
  doc: SourceDocument;
  images: ImageFinding[];
}

export class FillPlan {
  private readonly keyOf = new Map<ImageFinding, string>();
  private readonly pending = new Map<DocumentFill, Set<string>>();
  private readonly alts = new Map<string, string>();
  private readonly groups: Map<string, ImageGroup>;

  /**
   * `fills`: every document with the images to write; `groups`: the images to describe (those
   * whose source was found). An image in no group (a problem already reported) is skipped; an
   * image that needs no model (`unmarked-decorative`) gets `alt=""`.
   */
  constructor(
    private readonly fills: readonly DocumentFill[],
    groups: readonly ImageGroup[],
  ) {
    this.groups = new Map(groups.map((g) => [g.key, g]));
    for (const group of groups) for (const f of group.findings) this.keyOf.set(f, group.key);
    for (const fill of fills) {
      const keys = new Set<string>();
      for (const image of fill.images) {
        const key = this.keyOf.get(image);
        if (key !== undefined && image.alt !== 'unmarked-decorative') keys.add(key);
      }
      this.pending.set(fill, keys);
    }
  }

  /** Documents that need no description at all (ready before any request). */
  ready(): DocumentFill[] {
    return this.fills.filter((fill) => this.pending.get(fill)?.size === 0);
  }

  /**
   * Records a group's alt text (`undefined` when describing it failed: its images stay as
   * they are) and returns the documents this completes.
   */
  settle(key: string, alt: string | undefined): DocumentFill[] {
    if (!this.groups.has(key)) return [];
    if (alt !== undefined) this.alts.set(key, alt);
    const done: DocumentFill[] = [];
    for (const [fill, keys] of this.pending) {
      if (keys.delete(key) && keys.size === 0) done.push(fill);
    }
    return done;
  }

  /** The alt texts to write into a document: those described, and `""` for hidden images. */
  choices(fill: DocumentFill): AltChoice[] {
    const out: AltChoice[] = [];
    for (const image of fill.images) {
      if (image.alt === 'unmarked-decorative') {
        out.push({ image, alt: '' });
        continue;
      }
      const key = this.keyOf.get(image);
      const alt = key === undefined ? undefined : this.alts.get(key);
      if (alt !== undefined) out.push({ image, alt });
    }
    return out;
  }
}

/**
 * Pure: from every image of every document, what a fill does: per document the images it
 * writes (`fills`), the images to describe, grouped so each is described once (`groups`), and
 * those whose source cannot be resolved (`problems`, reported with file and line). Check the
 * groups' files with `checkLocalSources()` before building the `FillPlan`.
 */
export function planFill(
  documents: readonly DocumentFill[],
  options: ResolveOptions & FillScope,
): { fills: DocumentFill[]; groups: ImageGroup[]; problems: FindingProblem[] } {
  const fills = documents.map(({ doc, images }) => ({
    doc,
    images: images.filter((image) => needsText(image, options)),
  }));
  const { groups, problems } = groupImages(
    fills.flatMap((fill) => fill.images.filter((image) => needsModel(image, options))),
    options,
  );
  return { fills, groups, problems };
}
