import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readlink } from 'node:fs/promises';
import { run } from '@ferry/infra';

/**
 * The default verification of a migrated tree, cheap enough to run on every migration: the
 * metadata of every entry (type, permissions, owner, size, mtime, symlink target, which paths
 * share an inode), read by one `find` walk at C speed, plus the content of the paths the final
 * pass sent (SHA-256 of files, device numbers). The source digests its frozen tree, the target its
 * copy before it starts; any difference stops the migration. `--verify=full` digests every
 * file's content and every extended attribute instead (see manifest.ts).
 *
 * Names are bytes: paths travel as latin1 strings (one char per byte) and reach the file
 * system as Buffers, so names that are not UTF-8 are read exactly.
 */

/** Fields `find` prints per entry (see the -printf below). */
const PER_ENTRY = 10;

/** Sorted canonical lines for every entry below `root` (the root itself is `.`). */
export async function metadataLines(root: string, signal?: AbortSignal): Promise<string[]> {
  const chunks: Buffer[] = [];
  await run('find', ['.', '-printf', '%y\\0%m\\0%U\\0%G\\0%s\\0%T@\\0%i\\0%n\\0%P\\0%l\\0'], {
    cwd: root,
    keep: 1,
    timeoutMs: 30 * 60_000,
    onStdoutBytes: (b) => chunks.push(b),
    ...(signal ? { signal } : {}),
  });
  const f = Buffer.concat(chunks).toString('latin1').split('\0');
  const rows: Array<{ path: string; cols: string[] }> = [];
  const byInode = new Map<string, string[]>();
  for (let i = 0; i + PER_ENTRY <= f.length - 1; i += PER_ENTRY) {
    const [type, mode, uid, gid, size, mtime, inode, nlink, rel, target] = f.slice(i, i + PER_ENTRY) as string[];
    const path = rel || '.';
    // Directory sizes depend on the file system; mtimes are compared to the millisecond (what
    // every file system here keeps).
    const ms = mtime!.includes('.') ? `${mtime!.split('.')[0]}${mtime!.split('.')[1]!.padEnd(3, '0').slice(0, 3)}` : `${mtime}000`;
    rows.push({ path, cols: [type!, mode!, uid!, gid!, type === 'd' ? '' : size!, ms, type === 'l' ? target! : ''] });
    if (type !== 'd' && Number(nlink) > 1) {
      const g = byInode.get(inode!);
      if (g) g.push(path);
      else byInode.set(inode!, [path]);
    }
  }
  // Hard links: every path of a shared inode names the smallest path of its group.
  const group = new Map<string, string>();
  for (const paths of byInode.values()) {
    if (paths.length < 2) continue;
    const id = paths.reduce((a, b) => (b < a ? b : a));
    for (const p of paths) group.set(p, id);
  }
  return rows
    .map((r) => JSON.stringify([r.path, ...r.cols, group.get(r.path) ?? '']))
    .sort();
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
  const [meta, content] = await Promise.all([metadataLines(root, signal), contentLines(root, changed, signal)]);
  return digestOf(meta, content);
}

export function digestOf(meta: readonly string[], content: readonly string[]): string {
  const h = createHash('sha256');
  for (const l of meta) h.update(`${l}\n`);
  h.update('--\n');
  for (const l of content) h.update(`${l}\n`);
  return h.digest('hex');
}

/** A NUL-separated list of paths (a tracked pass's --files-from), names as latin1 strings. */
export async function readList(file: string): Promise<string[]> {
  return (await readFile(file)).toString('latin1').split('\0').filter((p) => p !== '');
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
