// The output options that only make sense with another one. Kept apart from job.ts so that
// cli.ts can check them without loading the image and request modules.
import { UsageError } from '../errors.js';
import type { WriteBack } from './job.js';

/**
 * The output options that need another one: `--resume` reads back what was written, and
 * `--skip-existing` looks for what is already there. Checked on the command line and again
 * once a batch job's record has filled in the options it remembers.
 */
export function checkOutputPairs(o: {
  resume?: boolean | undefined;
  output?: string | undefined;
  skipExisting?: boolean | undefined;
  sidecar?: boolean | undefined;
  writeBack?: WriteBack | undefined;
}): void {
  if (o.resume && !o.output && !o.writeBack)
    throw new UsageError(
      '--resume needs --output FILE (the file to resume from), or write-back (--write-metadata, --xmp-sidecar)',
    );
  if (o.skipExisting && !o.sidecar && !o.writeBack)
    throw new UsageError(
      '--skip-existing needs --sidecar, or write-back (--write-metadata, --xmp-sidecar)',
    );
}
