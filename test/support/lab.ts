import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '@ferry/infra';
import { afterAll, beforeAll } from 'vitest';
import { hostExec, labDown, labUp, type LabInfo } from '@ferry/lab';
import { freshPrefix } from './redis.js';

/**
 * The built `ferry` binary: the end-to-end tiers test the command a user runs (and the lab's workers
 * and scheduler run it too), so this one is the compiled CLI, not its sources. `npm test` builds
 * first (`npm run build && vitest run`).
 */
export const CLI = fileURLToPath(new URL('../../apps/cli/dist/main.js', import.meta.url));

/**
 * Points this test process (and every process it starts: workers, scheduler, CLI) at a private
 * state dir (so a private embedded Redis) and a fresh key prefix.
 */
export function isolate(): { stateDir: string; prefix: string } {
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-state-'));
  const prefix = freshPrefix();
  process.env.FERRY_STATE_DIR = stateDir;
  process.env.FERRY_PREFIX = prefix;
  delete process.env.REDIS_URL;
  process.env.FERRY_LOG_FORMAT = 'json';
  return { stateDir, prefix };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `ferry` binary; exit codes 0, 1 and 2 are results, anything else throws. */
export async function ferry(args: string[], timeoutMs = 300_000): Promise<CliResult> {
  const r = await run(process.execPath, [CLI, ...args], { timeoutMs, okExitCodes: [0, 1, 2] });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** HTTP GET from a namespace with busybox wget (its -T crashes on Debian 12's build: run's timeout bounds it). */
export async function httpFrom(netns: string, url: string, timeoutS = 1): Promise<string | null> {
  try {
    const r = await run('busybox', ['wget', '-q', '-O', '-', url], { netns, timeoutMs: timeoutS * 1000 });
    return r.stdout;
  } catch {
    return null;
  }
}

/** The container's state as its host sees it (from the host's own namespaces), or null if absent. */
export async function containerState(host: string, lxcPath: string, name: string): Promise<string | null> {
  try {
    const r = await hostExec(host, ['lxc-info', '-P', lxcPath, '-n', name, '-sH'], { timeoutMs: 10_000 });
    return r.stdout.trim();
  } catch {
    return null;
  }
}

/** Which root-switch port the switch sends a MAC to. */
export async function switchPortOf(bridge: string, mac: string): Promise<string | null> {
  const r = await run('bridge', ['fdb', 'show', 'br', bridge]);
  const line = r.stdout.split('\n').find((l) => l.toLowerCase().startsWith(`${mac.toLowerCase()} dev `));
  return line?.split(' ')[2] ?? null;
}

/**
 * A lab of `hosts` hosts for one test file, isolated (own state dir, embedded Redis, key prefix),
 * removed after the file. Returns a getter: the lab exists only once beforeAll has run.
 */
export function useLab(hosts = 2, opts: { live?: boolean } = {}): { lab: () => LabInfo; host: (name: string) => LabInfo['hosts'][number] } {
  let info: LabInfo | undefined;
  beforeAll(async () => {
    isolate();
    // No `lab down` first: it sweeps the lab's kernel names whoever made them. Leftovers of a
    // crashed run make labUp fail with LAB_CONFLICT, and `ferry lab down` removes them.
    info = await labUp({ hosts, ...(opts.live ? { live: true } : {}) });
  });
  afterAll(async () => {
    await labDown();
  });
  const lab = () => {
    if (!info) throw new Error('the lab is not up yet');
    return info;
  };
  return { lab, host: (name) => lab().hosts.find((x) => x.name === name)! };
}
