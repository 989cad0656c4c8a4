import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Small state files of a host's state dir: read as absent when missing, written atomically. */

export async function readText(p: string): Promise<string | null> {
  try {
    return await readFile(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
}

export async function readJson<T>(p: string): Promise<T | null> {
  const t = await readText(p);
  return t === null ? null : (JSON.parse(t) as T);
}

/** Writes via a temporary file and rename, so a crash leaves the old or the new file, never half. */
export async function writeJsonAtomic(p: string, value: unknown): Promise<void> {
  await mkdir(dirname(p), { recursive: true });
  const tmp = `${p}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value)}\n`);
  await rename(tmp, p);
}
