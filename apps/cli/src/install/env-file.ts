/**
 * An environment file as both systemd (`EnvironmentFile=`) and a POSIX shell (`set -a; . FILE`)
 * read it the same way: `KEY=value` lines whose values need no quoting. A value that would need
 * quotes is refused where the options are checked (`plainValue`), so the two readers never differ.
 */
export type EnvEntry = readonly [key: string, value: string | undefined, comment?: string];

/** A value both readers take literally: no whitespace, quotes, backslashes, `$`, backticks or `#`. */
export const plainValue = (v: string) => /^[^\s"'\\$`#;&|<>()]*$/.test(v);

/** The file's text: a header, then each set entry (an unset one as a commented-out line, to show it exists). */
export function envFile(header: readonly string[], entries: readonly EnvEntry[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [key, value, comment] of entries) {
    if (comment) lines.push('', `# ${comment}`);
    lines.push(value === undefined ? `#${key}=` : `${key}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}
