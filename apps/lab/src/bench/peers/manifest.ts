/**
 * Content manifest of a stopped container's rootfs, to tell whether a move kept it identical:
 * per path the type, mode, owner, size, link count (hard links), mtime, symlink target
 * (`find -printf`), all extended attributes including POSIX ACLs (`getfattr -R -d -m -`) and
 * the sha256 of every regular file. Hard links show as a link count that drops to 1.
 */
import { run } from '@ferry/infra';

export interface Entry {
  meta: string;
  nlink: number;
  mtime: string;
  xattrs: string;
  sha?: string;
}

export type Manifest = Map<string, Entry>;

const BIG = 512 * 1024 * 1024;

export async function manifest(root: string, exclude: readonly string[] = []): Promise<Manifest> {
  const out: Manifest = new Map();
  const skip = (p: string) => exclude.some((x) => p === x || p.startsWith(`${x}/`));
  // %y type, %m mode, %U:%G numeric owner, %s size, %n links, %T@ mtime, %P path, %l link target.
  const found = await run('find', ['.', '-xdev', '-printf', '%y %m %U:%G %s %n %T@\t%P\t%l\n'], { cwd: root, timeoutMs: 120_000, keep: BIG });
  for (const line of found.stdout.split('\n')) {
    if (!line) continue;
    const [head = '', path = '', target = ''] = line.split('\t');
    if (skip(path)) continue;
    const [type = '', mode = '', owner = '', size = '', nlink = '1', mtime = ''] = head.split(' ');
    // A directory's size and link count depend on the file system, not the content.
    const meta = type === 'd' ? `${type} ${mode} ${owner}` : `${type} ${mode} ${owner} ${size}${target ? ` -> ${target}` : ''}`;
    out.set(path, { meta, nlink: type === 'd' ? 0 : Number(nlink), mtime: type === 'd' ? '' : mtime, xattrs: '' });
  }
  // getfattr exits 1 when some file has no xattrs support; what it printed is still right.
  const attrs = await run('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: root, timeoutMs: 120_000, keep: BIG, okExitCodes: [0, 1] });
  let current: string | null = null;
  for (const line of attrs.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = line.slice(8).replace(/^\.\/?/, '');
      continue;
    }
    if (!line || current === null) continue;
    const e = out.get(current);
    if (e) e.xattrs += `${line};`;
  }
  const sums = await run('find', ['.', '-xdev', '-type', 'f', '-exec', 'sha256sum', '--', '{}', '+'], { cwd: root, timeoutMs: 300_000, keep: BIG });
  for (const line of sums.stdout.split('\n')) {
    const m = /^([0-9a-f]{64}) {2}\.\/(.*)$/.exec(line);
    if (!m) continue;
    const e = out.get(m[2]!);
    if (e) e.sha = m[1]!;
  }
  return out;
}

export interface Comparison {
  identical: boolean;
  /** Count of differing paths per kind (missing, extra, meta, content, hardlinks, mtime, xattrs). */
  counts: Record<string, number>;
  /** A few examples per kind. */
  examples: Record<string, string[]>;
}

export function compare(before: Manifest, after: Manifest): Comparison {
  const counts: Record<string, number> = {};
  const examples: Record<string, string[]> = {};
  const note = (kind: string, text: string) => {
    counts[kind] = (counts[kind] ?? 0) + 1;
    const list = (examples[kind] ??= []);
    if (list.length < 8) list.push(text);
  };
  for (const [path, a] of before) {
    const b = after.get(path);
    if (!b) {
      note('missing', path);
      continue;
    }
    if (a.meta !== b.meta) note('meta', `${path}: ${a.meta} -> ${b.meta}`);
    if (a.sha !== b.sha) note('content', path);
    if (a.nlink !== b.nlink) note('hardlinks', `${path}: ${a.nlink} links -> ${b.nlink}`);
    if (a.mtime !== b.mtime) note('mtime', `${path}: ${a.mtime} -> ${b.mtime}`);
    if (a.xattrs !== b.xattrs) note('xattrs', `${path}: ${shortAttrs(a.xattrs)} -> ${shortAttrs(b.xattrs)}`);
  }
  for (const path of after.keys()) if (!before.has(path)) note('extra', path);
  return { identical: Object.keys(counts).length === 0, counts, examples };
}

function shortAttrs(s: string): string {
  if (!s) return '(none)';
  return s
    .split(';')
    .filter(Boolean)
    .map((kv) => kv.split('=')[0])
    .join(',');
}

/** One line: "hardlinks 1 (srv/data/hl-a: 2 links -> 1), xattrs 1 (...)". */
export function describe(c: Comparison): string {
  if (c.identical) return 'identical';
  return Object.entries(c.counts)
    .map(([k, n]) => `${k} ${n} (${(c.examples[k] ?? []).join('; ')}${n > (c.examples[k]?.length ?? 0) ? '; ...' : ''})`)
    .join(', ');
}
