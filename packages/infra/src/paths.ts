import { homedir } from 'node:os';
import { join } from 'node:path';

/** ferry's state directory: $FERRY_STATE_DIR, else the XDG state dir (~/.local/state/ferry). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_STATE_DIR) return env.FERRY_STATE_DIR;
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(base, 'ferry');
}
