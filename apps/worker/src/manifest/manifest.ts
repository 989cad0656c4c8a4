import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { run } from '@ferry/infra';

export type EntryType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

/** One path of a tree, with everything a faithful copy must reproduce. */
export interface Entry {
  /** Relative to the root, `/`-separated; the root itself is `.`. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files and symlinks only (directory sizes depend on the file system). */
  size?: number;
  /** Modification time in whole milliseconds. */
  mtimeMs: number;
  /** Regular files: SHA-256 of the content, hex. */
  sha256?: string;
  /** Symlinks: the link text. */
  target?: string;
  /** Device nodes: major and minor numbers. */
  rdev?: { major: number; minor: number };
  /** Every extended attribute (including ACLs as system.posix_acl_*), name → hex value, sorted. */
  xattrs?: Record<string, string>;
  /** Hard links: paths sharing an inode within the tree get the smallest such path as group id. */
  linkGroup?: string;
  /** Set when the file name is not valid UTF-8: the raw bytes, hex. */
  rawPath?: string;
}

export interface ManifestOptions {
  /** Parallel file hashes (default 8). */
  concurrency?: number;
  /** Names excluded wherever they occur (default: none). */
  excludeNames?: readonly string[];
  signal?: AbortSignal;
}

/** A name or path as node decodes it (lossy for non-UTF-8 bytes), plus the raw bytes when lossy. */
function nameOf(buf: Buffer): { text: string; raw?: string } {
  const text = buf.toString('utf8');
  return Buffer.from(text, 'utf8').equals(buf) ? { text } : { text, raw: buf.toString('hex') };
}

function major(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}
function minor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}

async function sha256File(p: Buffer, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  const stream = createReadStream(p, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) });
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Decodes a name as getfattr prints it: `\ooo` octal escapes for `\`, newline and the like,
 * other bytes as they are (already decoded from UTF-8 by the time we see them).
 */
function decodeGetfattrName(s: string): string {
  if (!s.includes('\\')) return s;
  const parts: Buffer[] = [];
  let last = 0;
  const re = /\\([0-7]{3})/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    parts.push(Buffer.from(s.slice(last, m.index), 'utf8'), Buffer.from([parseInt(m[1]!, 8)]));
    last = m.index + m[0].length;
  }
  parts.push(Buffer.from(s.slice(last), 'utf8'));
  return Buffer.concat(parts).toString('utf8');
}

/**
 * Every extended attribute under `root`, by relative path (`.` for the root), with one
 * `getfattr -R` for the whole tree: physical walk (-P), attributes of symlinks themselves (-h),
 * all namespaces (-m -), values in hex. Parsed as it streams (the output can be large).
 */
async function readXattrs(root: string, signal?: AbortSignal): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  let pending = '';
  const onLine = (line: string) => {
    if (line.startsWith('# file: ')) {
      let p = decodeGetfattrName(line.slice('# file: '.length));
      if (p.startsWith('./')) p = p.slice(2);
      current = {};
      out.set(p, current);
      return;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current[decodeGetfattrName(line.slice(0, eq))] = line.slice(eq + 1);
    else if (current && line && !line.startsWith('#')) current[decodeGetfattrName(line)] = '';
  };
  await run('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], {
    cwd: root,
    env: { ...process.env, LC_ALL: 'C' },
    ...(signal ? { signal } : {}),
    onStdout: (chunk) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    },
  });
  if (pending) onLine(pending);
  return out;
}

interface Found {
  rel: string;
  /** Relative path as bytes (empty for the root). */
  relBuf: Buffer;
  abs: Buffer;
}

/**
 * Walks `rootDir` and describes every path (see `Entry`), sorted by path. Leaves out nothing
 * unless asked (`excludeNames`): the copy must hold all of the container. Does not follow symlinks and does not cross into other file systems' content
 * differently from rsync (it reads what is there).
 */
export async function manifest(rootDir: string, opts: ManifestOptions = {}): Promise<Entry[]> {
  const exclude = new Set(opts.excludeNames ?? []);
  const rootBuf = Buffer.from(rootDir.replace(/\/+$/, '') || '/', 'utf8');
  const found: Found[] = [{ rel: '.', relBuf: Buffer.alloc(0), abs: rootBuf }];

  // Breadth-first directory walk with names as raw bytes.
  const dirs: Found[] = [found[0]!];
  while (dirs.length) {
    const batch = dirs.splice(0, dirs.length);
    await pool(batch, opts.concurrency ?? 8, async (d) => {
      opts.signal?.throwIfAborted();
      const ents = await readdir(d.abs, { encoding: 'buffer', withFileTypes: true });
      for (const e of ents) {
        const n = nameOf(e.name);
        if (exclude.has(n.text)) continue;
        const relBuf = d.relBuf.length ? Buffer.concat([d.relBuf, Buffer.from('/'), e.name]) : e.name;
        const f: Found = { rel: relBuf.toString('utf8'), relBuf, abs: Buffer.concat([d.abs, Buffer.from('/'), e.name]) };
        found.push(f);
        if (e.isDirectory()) dirs.push(f);
      }
    });
  }

  const xattrs = await readXattrs(rootDir, opts.signal);
  const entries: Entry[] = new Array<Entry>(found.length);
  const inodes = new Map<string, string[]>();

  await pool(
    found.map((f, i) => [f, i] as const),
    opts.concurrency ?? 8,
    async ([f, i]) => {
      opts.signal?.throwIfAborted();
      const st = await lstat(f.abs, { bigint: true });
      const mode = Number(st.mode & 0o7777n);
      const type: EntryType = st.isFile()
        ? 'file'
        : st.isDirectory()
          ? 'dir'
          : st.isSymbolicLink()
            ? 'symlink'
            : st.isCharacterDevice()
              ? 'chardev'
              : st.isBlockDevice()
                ? 'blockdev'
                : st.isFIFO()
                  ? 'fifo'
                  : 'socket';
      const e: Entry = {
        path: f.rel,
        type,
        mode,
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtimeMs: Number(st.mtimeNs / 1_000_000n),
      };
      const raw = nameOf(f.relBuf).raw;
      if (raw) e.rawPath = raw;
      if (type === 'file') {
        e.size = Number(st.size);
        e.sha256 = await sha256File(f.abs, opts.signal);
      } else if (type === 'symlink') {
        e.size = Number(st.size);
        e.target = (await readlink(f.abs, { encoding: 'buffer' })).toString('utf8');
      } else if (type === 'chardev' || type === 'blockdev') {
        e.rdev = { major: major(st.rdev), minor: minor(st.rdev) };
      }
      const x = xattrs.get(f.rel);
      if (x && Object.keys(x).length) {
        e.xattrs = Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      }
      if (type !== 'dir' && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const g = inodes.get(key);
        if (g) g.push(f.rel);
        else inodes.set(key, [f.rel]);
      }
      entries[i] = e;
    },
  );

  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const group of inodes.values()) {
    if (group.length < 2) continue; // other links lie outside the tree: not part of its shape
    const id = group.reduce((a, b) => (b < a ? b : a));
    for (const p of group) byPath.get(p)!.linkGroup = id;
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** One canonical line per entry: a JSON array with a fixed field order. */
export function canonicalLine(e: Entry): string {
  return JSON.stringify([
    e.path,
    e.rawPath ?? null,
    e.type,
    e.mode.toString(8),
    e.uid,
    e.gid,
    e.size ?? null,
    e.mtimeMs,
    e.sha256 ?? null,
    e.target ?? null,
    e.rdev ? `${e.rdev.major}:${e.rdev.minor}` : null,
    e.xattrs ? Object.entries(e.xattrs) : null,
    e.linkGroup ?? null,
  ]);
}

/** SHA-256 over the sorted canonical lines of `manifest(rootDir)`. */
export async function manifestDigest(rootDir: string, opts: ManifestOptions = {}): Promise<string> {
  const entries = await manifest(rootDir, opts);
  const h = createHash('sha256');
  for (const e of entries) h.update(`${canonicalLine(e)}\n`);
  return h.digest('hex');
}

/** Human-readable differences between two manifests (for tests and error details). */
export function diffManifests(a: readonly Entry[], b: readonly Entry[], limit = 20): string[] {
  const out: string[] = [];
  const ma = new Map(a.map((e) => [e.path, canonicalLine(e)]));
  const mb = new Map(b.map((e) => [e.path, canonicalLine(e)]));
  for (const [p, l] of ma) {
    if (out.length >= limit) break;
    if (!mb.has(p)) out.push(`only in first: ${p}`);
    else if (mb.get(p) !== l) out.push(`differs: ${l} != ${mb.get(p)}`);
  }
  for (const p of mb.keys()) {
    if (out.length >= limit) break;
    if (!ma.has(p)) out.push(`only in second: ${p}`);
  }
  return out;
}
