/**
 * Pure: a write-back result as lines for a person (the dry run, `--debug`): which file, and
 * each field's value before and after. Values are shown as JSON strings, so a newline or a
 * quote in a caption is visible; every line passes `neutralize()`, since a caption is the
 * model's text and a file name is anyone's.
 */
import { neutralize, safeJson } from '../output/guard.js';
import type { Change } from './fields.js';
import type { WriteResult } from './writer.js';

function shown(value: Change['before']): string {
  return value === undefined ? '(none)' : safeJson(value);
}

/**
 * `photo.jpg: XMP-dc:Description: "old" → "new"` (`photo.jpg: would set XMP-dc:Description: …`
 * in a dry run), one line a field; one line in all when nothing changes, with the reason.
 */
export function formatChanges(result: WriteResult): string[] {
  const file = result.target;
  const verb = result.status === 'planned' ? 'would set ' : '';
  let lines: string[];
  switch (result.status) {
    case 'planned':
    case 'written':
      lines = result.changes.map(
        (c) => `${file}: ${verb}${c.field}: ${shown(c.before)} → ${shown(c.after)}`,
      );
      break;
    case 'unchanged':
      lines = [`${file}: already holds this answer; nothing to change`];
      break;
    case 'empty':
      lines = [`${file}: nothing to write (${result.reason ?? 'the answer is empty'})`];
      break;
    case 'unsupported':
      lines = [`${file}: not written (the format cannot hold metadata)`];
      break;
  }
  return lines.map(neutralize);
}
