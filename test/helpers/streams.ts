/**
 * A fake output stream for in-process runs (`Deps.stdout`, `Deps.stderr`, a Reporter's
 * stream): it keeps everything written, and says it is a terminal when asked to.
 */
export function collector(opts: { isTTY?: boolean; columns?: number } = {}): {
  text: string;
  readonly isTTY: boolean;
  readonly columns: number | undefined;
  write(chunk: string): void;
} {
  const out = {
    text: '',
    isTTY: opts.isTTY ?? false,
    columns: opts.columns,
    write: (chunk: string): void => {
      out.text += chunk;
    },
  };
  return out;
}

/** Select Graphic Rendition, ESC [ … m: the escape sequences that colour or style text. */
// eslint-disable-next-line no-control-regex -- matching the escape is the point
export const SGR = /\x1b\[[\d;]*m/;
