import { run, type RunResult } from '@ferry/infra';
import type { LabInfo } from '../lab/index.js';
import { cliMain } from '../lab/services.js';

/** The real `ferry` binary (apps/cli/dist/main.js), as a user runs it. */
const CLI = cliMain();

/** `ferry <args>` against the lab; exits 0, 1 and 2 are answers, not failures. */
export async function ferryCli(lab: LabInfo, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  // REDIS_URL pinned to the lab's: without it the CLI would start a Redis of its own while fault 4 has it down.
  return run(process.execPath, [CLI, ...args], {
    timeoutMs,
    okExitCodes: [0, 1, 2],
    env: { ...process.env, REDIS_URL: lab.redisUrl, FERRY_PREFIX: lab.prefix, FERRY_LOG_FORMAT: 'json' },
  });
}
