import { existsSync } from 'node:fs';

/**
 * Where `scripts/setup.sh` installs the CRIU it builds from source (`make install-criu
 * PREFIX=/usr/local/lib/ferry/criu`), away from the distribution's own criu, which stays untouched.
 */
export const PRIVATE_CRIU = '/usr/local/lib/ferry/criu/sbin/criu';

/**
 * The criu a worker runs: `FERRY_CRIU` when set, else ferry's private build when it exists, else
 * `criu` on PATH. lxc-checkpoint runs the file named `criu` first on its PATH, so a path given
 * here must name a file called `criu` (the runtime puts its directory first on that PATH).
 */
export function findCriu(env: NodeJS.ProcessEnv = process.env, privateCriu = PRIVATE_CRIU): string {
  if (env.FERRY_CRIU) return env.FERRY_CRIU;
  return existsSync(privateCriu) ? privateCriu : 'criu';
}
