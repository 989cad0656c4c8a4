import type { RunOptions } from '@ferry/infra';
import type { ContainerExecOptions } from './runtime.js';

/** Exit codes a command run for a client may end with: all of them are its own, none a failure of run(). */
export const ALL_EXIT_CODES = Array.from({ length: 256 }, (_, i) => i);

/**
 * run() options for a command run for a client (`Runtime.exec`, `ferry run`): the leader of its own
 * process group (signals and flow control go to the group), every exit code passed on, and the
 * caller's streaming, abort and timeout.
 */
export function execRunOptions(opts: ContainerExecOptions): RunOptions {
  return {
    processGroup: true,
    okExitCodes: ALL_EXIT_CODES,
    ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}),
    ...(opts.onStdoutBytes ? { onStdoutBytes: opts.onStdoutBytes } : {}),
    ...(opts.onStderrBytes ? { onStderrBytes: opts.onStderrBytes } : {}),
    ...(opts.keep !== undefined ? { keep: opts.keep } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  };
}
