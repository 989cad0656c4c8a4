import { chmod, chown, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FerryError } from '@ferry/core';

/** One file (or directory) an install writes, at its path on the host (before --prefix). */
export interface PlannedFile {
  path: string;
  mode: number;
  content?: string;
  /** What --dry-run and --json show instead of content, when it holds a secret. */
  shown?: string;
  /** A group to own it (root stays the owner), when that group exists here. */
  group?: string;
  dir?: boolean;
}

/** `conflict` only in a dry run's answer (a real run refuses instead). */
export type Action = 'create' | 'unchanged' | 'replace' | 'chmod' | 'conflict';
export interface Written {
  path: string;
  /** Where it is (or would be) written: the path under --prefix. */
  at: string;
  mode: string;
  action: Action;
}

const octal = (m: number) => `0${(m & 0o7777).toString(8)}`;

/** A group's id from /etc/group of this machine (not under --prefix: ownership is about this machine). */
function gidOf(group: string): number | undefined {
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith(`${group}:`));
  return line ? Number(line.split(':')[2]) : undefined;
}

async function actionFor(f: PlannedFile, at: string): Promise<Action | 'conflict'> {
  const st = await lstat(at).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
  if (!st) return 'create';
  if (f.dir) return st.isDirectory() ? ((st.mode & 0o7777) === f.mode ? 'unchanged' : 'chmod') : 'conflict';
  if (!st.isFile()) return 'conflict';
  if ((await readFile(at, 'utf8')) !== f.content) return 'conflict';
  return (st.mode & 0o7777) === f.mode ? 'unchanged' : 'chmod';
}

/**
 * Writes the plan under `prefix`: all or nothing as far as checking goes (every file is compared
 * before any is written), each file written to a temporary name and renamed. A file that exists
 * with other content is replaced only with `force`; one with the same content is left as it is
 * (its mode set), so running an install twice changes nothing. `dryRun` writes nothing.
 */
export async function writePlan(prefix: string, files: readonly PlannedFile[], o: { dryRun: boolean; force: boolean }): Promise<Written[]> {
  const planned = await Promise.all(
    files.map(async (f) => {
      const at = join(prefix, f.path);
      const found = await actionFor(f, at);
      return { f, at, action: found === 'conflict' ? (o.force && !f.dir ? ('replace' as const) : found) : found };
    }),
  );
  const conflicts = planned.filter((p) => p.action === 'conflict');
  if (conflicts.length && !o.dryRun) throw conflictError(conflicts.map((c) => c.at));
  if (!o.dryRun) {
    for (const { f, at, action } of planned) {
      if (action === 'unchanged') continue;
      if (f.dir) {
        await mkdir(at, { recursive: true, mode: f.mode });
        await chmod(at, f.mode);
        continue;
      }
      await mkdir(dirname(at), { recursive: true, mode: 0o755 });
      if (action === 'chmod') {
        await chmod(at, f.mode);
      } else {
        const tmp = `${at}.ferry-install.${process.pid}`;
        try {
          await writeFile(tmp, f.content ?? '', { mode: f.mode, flag: 'wx' });
          await chmod(tmp, f.mode); // the umask is not ours to obey for a unit or a secret
          const gid = f.group === undefined ? undefined : gidOf(f.group);
          if (gid !== undefined && process.getuid?.() === 0) await chown(tmp, 0, gid);
          await rename(tmp, at);
        } finally {
          await rm(tmp, { force: true });
        }
      }
    }
  }
  return planned.map(({ f, at, action }) => ({ path: f.path, at, mode: octal(f.mode), action }));
}

/** Files that exist with other content: refused (exit 1), nothing written. */
export function conflictError(paths: readonly string[]): FerryError {
  const many = paths.length > 1;
  return new FerryError('INSTALL_CONFLICT', `${paths.join(', ')} ${many ? 'exist' : 'exists'} with other content; nothing written (--dry-run shows what would be written, --force replaces ${many ? 'them' : 'it'})`);
}
