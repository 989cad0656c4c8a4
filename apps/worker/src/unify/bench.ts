/**
 * Benchmark of unify against the usual duplicate finders, on the same tree: several similar root
 * filesystems (one image, a few files changed or re-stamped per copy, some unique data each) on an
 * XFS file system with reflink in a loop file. For each tool the file system is made afresh and the
 * tree regenerated (deterministically), so every tool starts from identical bytes on disk.
 * Reported per tool: wall time, duplicates it found (its own count), space freed (statfs).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, succeeds } from '@ferry/infra';
import { usedBytes } from './probe.js';
import { formatBytes } from './report.js';
import { unify } from './unify.js';

export type BenchTool = 'ferry-dedupe' | 'ferry-hardlink' | 'hardlink' | 'rdfind' | 'jdupes-link' | 'jdupes-dedupe';
export const BENCH_TOOLS: readonly BenchTool[] = ['ferry-dedupe', 'ferry-hardlink', 'hardlink', 'rdfind', 'jdupes-link', 'jdupes-dedupe'];

export interface BenchOptions {
  /** Directory for the loop image (default the OS temp dir; it must not be tmpfs-limited). */
  workDir?: string;
  /** Root filesystems (default 5). */
  copies?: number;
  /** Size of the common image, MiB (default 80). */
  baseMiB?: number;
  /** Data unique to each copy, MiB (default 8). */
  uniqueMiB?: number;
  /** Share of image files whose content differs in a copy (default 0.05). */
  changed?: number;
  /** Share of image files whose mtime differs in a copy (default 0.02). */
  restamped?: number;
  tools?: readonly BenchTool[];
  /** Per tool (default 120 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface BenchRow {
  tool: BenchTool;
  command: string;
  wallMs: number;
  /** Duplicate files and bytes as the tool counted them (null when it does not say). */
  dupFiles: number | null;
  dupBytes: number | null;
  /** statfs used space before minus after. */
  freedBytes: number;
  ok: boolean;
  note?: string;
}

export interface BenchResult {
  /** Bytes of the generated tree and the bytes whose content occurs more than once (minus one copy). */
  treeBytes: number;
  contentDupBytes: number;
  /** Of those, what also has equal metadata (what metadata-respecting hardlinkers may link). */
  metaDupBytes: number;
  rows: BenchRow[];
}

/** mulberry32: a tiny seeded PRNG, so every generation of the tree is the same. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Incompressible bytes that depend only on `id` (AES-CTR keystream). */
function content(id: string, size: number): Buffer {
  const key = createHash('sha256').update(id).digest();
  const c = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()]);
}

interface Spec {
  path: string;
  size: number;
  mode: number;
}

const DIRS = ['bin', 'sbin', 'lib', 'usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib/x86_64-linux-gnu', 'usr/share/doc', 'usr/share/locale', 'opt/app'];
const T0 = 1_700_000_000;

function imageSpec(baseMiB: number): Spec[] {
  const rnd = prng(42);
  const out: Spec[] = [];
  let total = 0;
  for (let i = 0; total < baseMiB * 1024 * 1024; i++) {
    const r = rnd();
    // Mostly small files, a few large ones, like a distribution's /usr.
    const size = r < 0.7 ? 1024 + Math.floor(rnd() * 31 * 1024) : r < 0.95 ? 32 * 1024 + Math.floor(rnd() * 992 * 1024) : 1024 * 1024 + Math.floor(rnd() * 7 * 1024 * 1024);
    out.push({ path: `${DIRS[i % DIRS.length]}/f${i}`, size, mode: i % 3 === 0 ? 0o755 : 0o644 });
    total += size;
  }
  return out;
}

/** Writes the copies; answers tree size and the theoretical duplicate bytes. */
async function generate(lxc: string, o: Required<Pick<BenchOptions, 'copies' | 'baseMiB' | 'uniqueMiB' | 'changed' | 'restamped'>>) {
  const spec = imageSpec(o.baseMiB);
  const rnd = prng(7);
  // Per file: which copies hold another content, which another mtime.
  const variant = spec.map(() => Array.from({ length: o.copies }, () => rnd() < o.changed));
  const stamp = spec.map(() => Array.from({ length: o.copies }, () => rnd() < o.restamped));
  let treeBytes = 0;
  const roots: string[] = [];
  for (let c = 0; c < o.copies; c++) {
    const root = join(lxc, `c${c}`, 'rootfs');
    roots.push(root);
    for (const d of [...DIRS, 'opt/local']) await mkdir(join(root, d), { recursive: true });
    for (const [i, s] of spec.entries()) {
      const p = join(root, s.path);
      await writeFile(p, content(variant[i]![c] ? `f${i}-c${c}` : `f${i}`, s.size), { mode: s.mode });
      await utimes(p, T0, stamp[i]![c] ? T0 + 3600 + c : T0);
      treeBytes += s.size;
    }
    for (let u = 0, left = o.uniqueMiB * 1024 * 1024; left > 0; u++) {
      const size = Math.min(left, 512 * 1024);
      await writeFile(join(root, 'opt/local', `u${u}`), content(`unique-${c}-${u}`, size));
      left -= size;
      treeBytes += size;
    }
  }
  let contentDupBytes = 0;
  let metaDupBytes = 0;
  for (const [i, s] of spec.entries()) {
    const same = variant[i]!.filter((v) => !v).length;
    contentDupBytes += Math.max(0, same - 1) * s.size;
    // Copies with the image's content, grouped by mtime: each group of k shares k-1.
    const groups = new Map<boolean, number>();
    variant[i]!.forEach((v, c) => {
      if (!v) groups.set(stamp[i]![c]!, (groups.get(stamp[i]![c]!) ?? 0) + 1);
    });
    // Re-stamped copies each have their own mtime (T0 + 3600 + c): they match nothing.
    metaDupBytes += Math.max(0, (groups.get(false) ?? 0) - 1) * s.size;
  }
  await run('sync', []);
  return { roots, treeBytes, contentDupBytes, metaDupBytes };
}

const num = (s: string | undefined) => (s === undefined ? null : Number(s));

/** "195.31 KiB" → bytes. */
function parseSize(s: string): number | null {
  const m = /([\d.]+)\s*(B|KiB|MiB|GiB|KB|MB|GB|bytes)?/.exec(s);
  if (!m) return null;
  const f: Record<string, number> = { B: 1, bytes: 1, KiB: 1024, KB: 1000, MiB: 1024 ** 2, MB: 1000 ** 2, GiB: 1024 ** 3, GB: 1000 ** 3 };
  return Math.round(Number(m[1]) * (f[m[2] ?? 'B'] ?? 1));
}

async function runTool(tool: BenchTool, lxc: string, roots: string[], timeoutMs: number): Promise<Omit<BenchRow, 'freedBytes' | 'wallMs'> & { wallMs: number }> {
  const t0 = Date.now();
  const done = (r: Omit<BenchRow, 'freedBytes' | 'wallMs'>) => ({ ...r, wallMs: Date.now() - t0 });
  switch (tool) {
    case 'ferry-dedupe':
    case 'ferry-hardlink': {
      const mode = tool === 'ferry-dedupe' ? 'dedupe' : 'hardlink';
      const r = await unify(roots, { mode, running: roots.map(() => false), signal: AbortSignal.timeout(timeoutMs) });
      const p = r.phaseMs;
      return done({
        tool,
        command: `unify(${roots.length} rootfs, { mode: '${mode}' })`,
        dupFiles: r.filesShared,
        dupBytes: r.bytesShared,
        ok: r.problems.length === 0,
        note: `scan ${p.scan} ms, hash ${p.hash} ms, ${mode} ${p.share} ms, statfs ${p.measure} ms`,
      });
    }
    case 'hardlink': {
      const args = [...roots];
      const out = (await run('hardlink', args, { timeoutMs })).stdout;
      return done({
        tool,
        command: `hardlink ${args.length} dirs`,
        dupFiles: num(/Linked:\s+(\d+)/.exec(out)?.[1]),
        dupBytes: parseSize(/Saved:\s+(.+)/.exec(out)?.[1] ?? ''),
        ok: true,
        note: 'respects mode, owner, mtime; not xattrs (default options)',
      });
    }
    case 'rdfind': {
      const results = join(lxc, '..', 'rdfind-results.txt');
      const out = (await run('rdfind', ['-makehardlinks', 'true', '-outputname', results, ...roots], { timeoutMs })).stdout;
      // rdfind counts every file of a duplicate set, the kept one included.
      return done({
        tool,
        command: 'rdfind -makehardlinks true',
        dupFiles: num(/you have (\d+) files that are not unique/.exec(out)?.[1]),
        dupBytes: parseSize(/Totally, (.+) can be reduced/.exec(out)?.[1] ?? ''),
        ok: true,
        note: 'links regardless of owner, mode, mtime; dupFiles counts kept copies too',
      });
    }
    case 'jdupes-link':
    case 'jdupes-dedupe': {
      // jdupes -L is silent: a summary pass (-m, not timed) says what it finds.
      const summary = (await run('jdupes', ['-r', '-m', ...roots], { timeoutMs })).stdout;
      const t1 = Date.now();
      const flag = tool === 'jdupes-link' ? '-L' : '-B';
      await run('jdupes', ['-r', '-q', flag, ...roots], { timeoutMs });
      const m = /(\d+) duplicate files \(in \d+ sets\), occupying (.+)/.exec(summary);
      return {
        tool,
        command: `jdupes -r ${flag}`,
        dupFiles: num(m?.[1]),
        dupBytes: parseSize(m?.[2] ?? ''),
        ok: true,
        note: flag === '-L' ? 'links regardless of owner, mode, mtime' : 'FIDEDUPERANGE, like ferry dedupe',
        wallMs: Date.now() - t1,
      };
    }
  }
}

/** Runs the benchmark; the loop device, mount and image are removed whatever happens. */
export async function benchUnify(opts: BenchOptions = {}): Promise<BenchResult> {
  const o = {
    copies: opts.copies ?? 5,
    baseMiB: opts.baseMiB ?? 80,
    uniqueMiB: opts.uniqueMiB ?? 8,
    changed: opts.changed ?? 0.05,
    restamped: opts.restamped ?? 0.02,
  };
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const log = opts.log ?? (() => {});
  const base = await mkdtemp(join(opts.workDir ?? tmpdir(), 'ferry-bench-unify-'));
  const img = join(base, 'xfs.img');
  const mnt = join(base, 'mnt');
  let loop: string | undefined;
  let mounted = false;
  const rows: BenchRow[] = [];
  const release = async () => {
    if (mounted) {
      // A just-finished tool may still hold the mount for a moment.
      for (let i = 0; i < 5 && !(await succeeds('umount', [mnt])); i++) await new Promise((r) => setTimeout(r, 200));
      if (!(await succeeds('umount', [mnt]))) await succeeds('umount', ['-l', mnt]);
      mounted = false;
    }
    if (loop) {
      await succeeds('losetup', ['-d', loop]);
      loop = undefined;
    }
  };
  let tree = { treeBytes: 0, contentDupBytes: 0, metaDupBytes: 0 };
  // Interrupted (Ctrl-C, kill): release the mount and the loop device, then die of the signal.
  const onSignal = (sig: NodeJS.Signals) => {
    void release()
      .then(() => rm(base, { recursive: true, force: true }))
      .finally(() => process.kill(process.pid, sig));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await mkdir(mnt);
    const need = Math.ceil(((o.baseMiB + o.uniqueMiB) * o.copies * 1.3 + 400) / 64) * 64;
    for (const tool of opts.tools ?? BENCH_TOOLS) {
      // A new image and loop device per tool: reusing a device right after umount can find it
      // still held (udev probing it), and a new image starts every tool from the same layout.
      await rm(img, { force: true });
      await run('truncate', ['-s', `${need}M`, img]);
      await run('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
      loop = (await run('losetup', ['--find', '--show', img])).stdout.trim();
      await run('mount', [loop, mnt]);
      mounted = true;
      try {
        const lxc = join(mnt, 'lxc');
        const g = await generate(lxc, o);
        tree = g;
        const before = await usedBytes(mnt);
        log(`${tool}: tree of ${formatBytes(g.treeBytes)} ready, running`);
        let row: BenchRow;
        try {
          const r = await runTool(tool, lxc, g.roots, timeoutMs);
          row = { ...r, freedBytes: before - (await usedBytes(mnt)) };
        } catch (e) {
          row = { tool, command: tool, wallMs: 0, dupFiles: null, dupBytes: null, freedBytes: before - (await usedBytes(mnt)), ok: false, note: (e as Error).message.split('\n')[0] };
        }
        rows.push(row);
        log(`${tool}: ${formatBytes(row.freedBytes)} freed in ${row.wallMs} ms`);
      } finally {
        await release();
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await release();
    await rm(base, { recursive: true, force: true });
  }
  return { ...tree, rows };
}

export function formatBench(r: BenchResult): string {
  const head = ['tool', 'wall', 'dup files', 'dup bytes', 'freed (statfs)', 'notes'];
  const body = r.rows.map((x) => [
    x.tool,
    `${(x.wallMs / 1000).toFixed(2)} s`,
    x.dupFiles === null ? '-' : String(x.dupFiles),
    x.dupBytes === null ? '-' : formatBytes(x.dupBytes),
    formatBytes(x.freedBytes),
    `${x.ok ? '' : 'FAILED '}${x.note ?? ''}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [
    `tree ${formatBytes(r.treeBytes)}; equal content beyond one copy: ${formatBytes(r.contentDupBytes)}; of which with equal metadata too: ${formatBytes(r.metaDupBytes)}`,
    line(head),
    ...body.map(line),
  ].join('\n');
}
