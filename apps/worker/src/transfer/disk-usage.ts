import { run } from '@ferry/infra';

/** Bytes a directory occupies on disk (allocated blocks; holes of sparse files do not count). */
export async function diskUsage(dir: string, signal?: AbortSignal): Promise<number> {
  // Exit 1 with a total still printed happens when files vanish under a running container.
  const r = await run('du', ['-s', '--block-size=1', dir], { timeoutMs: 10 * 60_000, okExitCodes: [0, 1], ...(signal ? { signal } : {}) });
  const n = Number(r.stdout.trim().split(/\s+/)[0]);
  if (!Number.isFinite(n)) throw new Error(`du ${dir}: unexpected output ${r.stdout}`);
  return n;
}
