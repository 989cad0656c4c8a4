import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import { checkArgv, checkTimeout, execJob, followExec, type ExecTimings } from './exec.js';
import { namedHost } from './target-host.js';

/**
 * `ferry run <host> [--timeout S] -- <command> [args...]`: a command in a fresh throwaway context on
 * that host (its own PID, mount, UTS, IPC and network namespaces and cgroup; the host's filesystem
 * with / read-only and a private /tmp), as root: see apps/worker/src/exec/fresh-context.ts. It is an
 * exec job with `fresh: true` in place of a container, so it is signed, streamed, signalled and ended
 * exactly as `ferry exec` (exec.ts): ferry exits with the command's code (128+N for signal N, 124
 * after --timeout, 125 when the context could not be set up).
 */
export interface RunCommandOptions {
  host: string;
  argv: string[];
  timeoutSec?: number;
}

export async function runCommand(c: Client, o: RunCommandOptions, t?: ExecTimings): Promise<number> {
  if (!o.argv.length) throw new ExitError(EXIT.badInput, 'command: no command given: put it after --, e.g. ferry run h1 -- uname -a');
  const argv = checkArgv(o.argv);
  checkTimeout(o.timeoutSec);
  const host = await namedHost(c, o.host, 'host');
  return followExec(c, host.name, execJob({ fresh: true }, argv, o.timeoutSec), t);
}
