/**
 * Every metadata writer open in this process, so that `src/main.ts` (the only module that
 * touches `process`) can shut them down from its signal and exit handlers without knowing
 * where they were opened. This module loads nothing: main.ts imports it at start-up.
 *
 * - `closeMetadataWriters()`: ends each writer cleanly (waits for writes in progress, then
 *   ends ExifTool). For the end of a run, and after the first Ctrl-C or SIGTERM once the run
 *   has stopped.
 * - `metadataProcessIds()`: the Perl processes still running, for the synchronous `exit`
 *   handler to send SIGINT to. ExifTool traps SIGINT: it deletes its temporary file and exits,
 *   so the photo being written is left as it was (or, if the rename was done, fully written).
 */

/** What the registry needs of a writer. */
export interface OpenWriter {
  close(): Promise<void>;
  processIds(): number[];
}

const open = new Set<OpenWriter>();

export function registerWriter(writer: OpenWriter): void {
  open.add(writer);
}

export function unregisterWriter(writer: OpenWriter): void {
  open.delete(writer);
}

/** Ends every open writer; resolves when all have ended (never rejects). */
export async function closeMetadataWriters(): Promise<void> {
  await Promise.allSettled([...open].map((w) => w.close()));
}

/** The ids of every ExifTool (Perl) process that open writers have running. */
export function metadataProcessIds(): number[] {
  return [...open].flatMap((w) => w.processIds());
}
