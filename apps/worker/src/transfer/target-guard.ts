import { FerryError, PreconditionError } from '@ferry/core';
import type { StepContext } from '../context.js';
import { MARKER } from '../ownership/target-ownership.js';
import { sshRun, type SshTarget } from './ssh.js';

/** The target dir exists and is not this operation's: nothing may be mirrored into it. */
export function targetTaken(container: string, peer: string, dir: string, marker: string | null): never {
  throw new PreconditionError(
    'CONTAINER_EXISTS_ON_TARGET',
    marker ? `${dir} on ${peer} belongs to another migration (${marker})` : `container ${container} already exists on ${peer} (${dir})`,
    { container, ...(marker ? { marker } : {}) },
  );
}

/**
 * Remote target, right before the first write: refuse a dir that exists without this operation's
 * marker (the mirror pass deletes what the source does not have). Preflight checked this already;
 * this closes the gap since then.
 */
export async function guardRemote(ctx: StepContext, t: SshTarget, dest: string, o: { migrationId: string; container: string; peer: string }): Promise<void> {
  try {
    const m = await sshRun(t, 'cat', [`${dest}/${MARKER}`], { okExitCodes: [0, 1], signal: ctx.signal });
    if (m.exitCode === 0) {
      if (m.stdout.trim() !== o.migrationId) targetTaken(o.container, o.peer, dest, m.stdout.trim() || null);
      return;
    }
    const d = await sshRun(t, 'test', ['-e', dest], { okExitCodes: [0, 1], signal: ctx.signal });
    if (d.exitCode === 0) targetTaken(o.container, o.peer, dest, null);
  } catch (e) {
    if (e instanceof FerryError && e.code === 'INVALID_REMOTE_COMMAND') {
      ctx.log.warn({ dest }, 'target path cannot be checked over ssh (unusual characters); relying on preflight');
      return;
    }
    throw e;
  }
}
