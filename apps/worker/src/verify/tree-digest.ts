import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, readFile, readlink, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { run } from '@ferry/infra';

/**
 * The default verification of a migrated tree, cheap enough to run on every migration: the
 * metadata of every entry (type, permissions, owner, size, mtime, symlink target, which paths
 * share an inode), plus the content of the paths the final pass sent (SHA-256 of files, device
 * numbers). The source digests its frozen tree, the target its copy before it starts; any
 * difference stops the migration. The metadata part is a sum over entries, so each side can take
 * it from an index made while the container still ran, brought up to date with the final pass's
 * list (metadataPatch), and walks at rest only where that cannot be vouched for. `--verify=full` digests every
 * file's content and every extended attribute instead (see manifest.ts).
 *
 * Names are bytes: paths travel as latin1 strings (one char per byte) and reach the file
 * system as Buffers, so names that are not UTF-8 are read exactly.
 */

/**
 * Sorted canonical lines for every entry below `root` (the root itself is `.`): path, then type,
 * permissions, owner, size (not for directories: it depends on the file system), mtime to the
 * millisecond (what every file system here keeps), symlink target, and the smallest path of its
 * hard-link group. One `find` walk; kept to string slicing, as it runs over every entry while the
 * container is down.
 */
export async function metadataLines(root: string, signal?: AbortSignal): Promise<string[]> {
  const chunks: Buffer[] = [];
  // <path> NUL <type> <mode> <uid> <gid> <size> <mtime> <inode> <nlink> <device> NUL <symlink target> NUL
  await run('find', ['.', '-printf', '%P\\0%y %m %U %G %s %T@ %i %n %D\\0%l\\0'], {
    cwd: root,
    keep: 1,
    timeoutMs: 30 * 60_000,
    onStdoutBytes: (b) => chunks.push(b),
    ...(signal ? { signal } : {}),
  });
  const f = Buffer.concat(chunks).toString('latin1').split('\0');
  const lines: string[] = [];
  const byInode = new Map<string, string[]>();
  const linked: Array<{ line: number; path: string }> = [];
  for (let i = 0; i + 3 <= f.length; i += 3) {
    const path = f[i] || '.';
    const st = f[i + 1]!;
    // type mode uid gid size mtime inode nlink
    const a = st.split(' ');
    const type = a[0]!;
    const mtime = a[5]!;
    const dot = mtime.indexOf('.');
    const ms = dot < 0 ? `${mtime}000` : `${mtime.slice(0, dot)}${mtime.slice(dot + 1, dot + 4).padEnd(3, '0')}`;
    lines.push(`${path}\0${type} ${a[1]} ${a[2]} ${a[3]} ${type === 'd' ? '-' : a[4]} ${ms}\0${type === 'l' ? f[i + 2] : ''}`);
    if (type !== 'd' && a[7] !== '1') {
      const inode = `${a[8]}:${a[6]}`; // device and inode number: a tree may span file systems
      const g = byInode.get(inode);
      if (g) g.push(path);
      else byInode.set(inode, [path]);
      linked.push({ line: lines.length - 1, path });
    }
  }
  // Hard links: every path of a shared inode names the smallest path of its group.
  const group = new Map<string, string>();
  for (const paths of byInode.values()) {
    if (paths.length < 2) continue;
    const id = paths.reduce((x, y) => (y < x ? y : x));
    for (const p of paths) group.set(p, id);
  }
  for (const l of linked) {
    const g = group.get(l.path);
    if (g !== undefined) lines[l.line] += `\0${g}`;
  }
  return lines.sort();
}

async function sha256(p: Buffer, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** One line per listed path that lies below `root`: its content (or that it is absent). */
export async function contentLines(root: string, paths: readonly string[], signal?: AbortSignal): Promise<string[]> {
  const base = Buffer.from(`${root.replace(/\/+$/, '')}/`, 'latin1');
  const lines: string[] = [];
  for (const p of [...new Set(paths)].sort()) {
    signal?.throwIfAborted();
    const abs = Buffer.concat([base, Buffer.from(p, 'latin1')]);
    const st = await lstat(abs, { bigint: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
      throw e;
    });
    if (!st) lines.push(JSON.stringify([p, 'absent']));
    else if (st.isFile()) lines.push(JSON.stringify([p, 'file', await sha256(abs, signal)]));
    else if (st.isSymbolicLink()) lines.push(JSON.stringify([p, 'symlink', (await readlink(abs, { encoding: 'buffer' })).toString('hex')]));
    else if (st.isCharacterDevice() || st.isBlockDevice()) lines.push(JSON.stringify([p, 'dev', st.rdev.toString()]));
  }
  return lines;
}

/**
 * Digest of `root`: metadata of everything, content of `changed` (paths relative to `root`).
 * Both sides must be given the same list.
 */
export async function treeDigest(root: string, changed: readonly string[], signal?: AbortSignal): Promise<string> {
  const [meta, content] = await Promise.all([metadataSum(root, signal), contentLines(root, changed, signal)]);
  return digestOf(meta, content);
}

/** The helper the setup script builds (native/treemeta.c), or FERRY_TREEMETA; null when missing. */
export function treemetaBinary(): string | null {
  if (process.env.FERRY_TREEMETA === 'none') return null;
  const p = process.env.FERRY_TREEMETA ?? fileURLToPath(new URL('../../native/ferry-treemeta', import.meta.url));
  return existsSync(p) ? p : null;
}

/**
 * The metadata lines' bytes, as metadataLines gives them (each followed by "\n"): from the C
 * helper when built, else from metadataLines (`FERRY_TREEMETA=none` forces that). Both give the
 * same bytes (a test holds them to it).
 */
export async function metadataBytes(root: string, signal?: AbortSignal): Promise<Buffer> {
  const bin = treemetaBinary();
  if (!bin) return Buffer.from((await metadataLines(root, signal)).map((l) => `${l}\n`).join(''), 'utf8');
  const chunks: Buffer[] = [];
  await run(bin, [root], { keep: 1, timeoutMs: 30 * 60_000, onStdoutBytes: (b) => chunks.push(b), ...(signal ? { signal } : {}) });
  return Buffer.concat(chunks);
}

const MOD = (1n << 256n) - 1n;

/**
 * The metadata part of the digest: SHA-256 of every metadata line (with its "\n"), added up
 * modulo 2^256, in hex. A sum, not a hash of the sorted lines, so that it can be brought up to
 * date from an index taken earlier by taking out what a final pass touched and adding it back as
 * it is now (metadataPatch): the frozen window then grows with the change, not with the tree.
 * From the C helper when built (one walk, no JavaScript per entry), else from metadataLines.
 */
export async function metadataSum(root: string, signal?: AbortSignal): Promise<string> {
  const bin = treemetaBinary();
  if (bin) return (await run(bin, ['sum', root], { keep: 4096, timeoutMs: 30 * 60_000, ...(signal ? { signal } : {}) })).stdout.trim();
  return sumOfLines(await metadataLines(root, signal));
}

export function sumOfLines(lines: readonly string[]): string {
  let sum = 0n;
  for (const l of lines) sum = (sum + BigInt(`0x${createHash('sha256').update(`${l}\n`).digest('hex')}`)) & MOD;
  return sum.toString(16).padStart(64, '0');
}

/**
 * Indexes `root`'s metadata into `file` (absolute) for metadataPatch, and returns the sum. Null
 * where the C helper is not built (then the sides walk at rest, as before).
 */
export async function metadataIndex(root: string, file: string, signal?: AbortSignal): Promise<string | null> {
  const bin = treemetaBinary();
  if (!bin) return null;
  return (await run(bin, ['snapshot', root, file], { keep: 4096, timeoutMs: 30 * 60_000, ...(signal ? { signal } : {}) })).stdout.trim();
}

/**
 * The metadata sum of `root` now, from the index in `file` and a fresh look at only the entries
 * `list` names (rsync --files-from entries relative to `root`: `p`, or `d/.` for a directory and
 * its entries), which must be everything that changed in `root` since the index was taken. Refused
 * (with why) when that cannot be vouched for (no helper, no index, an index of another format or directory,
 * an entry with more than one link): the caller walks instead (metadataSum).
 */
export async function metadataPatch(root: string, file: string, list: readonly string[], signal?: AbortSignal): Promise<{ sum: string } | { refused: string }> {
  const bin = treemetaBinary();
  if (!bin) return { refused: 'ferry-treemeta is not built' };
  if (!existsSync(file)) return { refused: 'no index' };
  const listFile = `${file}.list`;
  await writeFile(listFile, Buffer.from(list.map((p) => `${p}\0`).join(''), 'latin1'));
  const r = await run(bin, ['patch', root, file, listFile], { keep: 4096, okExitCodes: [0, 3], timeoutMs: 30 * 60_000, ...(signal ? { signal } : {}) });
  return r.exitCode === 0 ? { sum: r.stdout.trim() } : { refused: r.stderr.trim().replace(/^ferry-treemeta: cannot patch: /, '') };
}

export function digestOf(metaSum: string, content: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`meta ${metaSum}\n--\n`);
  for (const l of content) h.update(`${l}\n`);
  return h.digest('hex');
}

/** A NUL-separated list of paths (a tracked pass's --files-from), names as latin1 strings. */
export async function readList(file: string): Promise<string[]> {
  return (await readFile(file)).toString('latin1').split('\0').filter((p) => p !== '');
}

/**
 * The entries of a tracked pass's list (relative to the container dir) that lie in the root
 * filesystem, relative to it, in the list's own form (`d/.` for a directory and its entries):
 * what metadataPatch takes. An entry naming the root filesystem itself stands for it and its
 * entries (more than was touched is only more work).
 */
export function listUnder(list: readonly string[], rootfsRel: string): string[] {
  const prefix = rootfsRel === '.' || rootfsRel === '' ? '' : `${rootfsRel.replace(/\/+$/, '')}/`;
  const out: string[] = [];
  for (const p of list) {
    if (prefix === '') out.push(p);
    else if (p.startsWith(prefix)) out.push(p.slice(prefix.length) || '.');
    else if (`${p}/` === prefix || p === '.') out.push('.');
  }
  return out;
}

/**
 * The paths a tracked pass sent (relative to the container dir, as in its --files-from list) that
 * lie in the root filesystem, relative to it. `dir/.` entries stand for the directory's entries,
 * whose metadata the walk covers; the directory itself is kept.
 */
export function changedUnder(list: readonly string[], rootfsRel: string): string[] {
  const prefix = rootfsRel === '.' || rootfsRel === '' ? '' : `${rootfsRel.replace(/\/+$/, '')}/`;
  const out: string[] = [];
  for (const raw of list) {
    const p = raw === '.' ? '' : raw.endsWith('/.') ? raw.slice(0, -2) : raw;
    if (prefix === '') out.push(p || '.');
    else if (p.startsWith(prefix)) out.push(p.slice(prefix.length));
    else if (`${p}/` === prefix) out.push('.');
  }
  return out;
}
