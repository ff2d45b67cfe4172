// htmlhint ships no type declarations: the part of its API the corpus test uses.
declare module 'htmlhint' {
  interface HintMessage {
    line: number;
    col: number;
    message: string;
    rule: { id: string };
  }
  const htmlhint: {
    HTMLHint: { verify(html: string, rules: Record<string, unknown>): HintMessage[] };
  };
  export default htmlhint;
}
