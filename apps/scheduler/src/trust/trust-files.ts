import type { Logger } from 'pino';
import { fingerprint, HostKeyDir, loadOrCreatePrivateKey, ReplayGuard, stateDir, trustPaths } from '@ferry/infra';
import { join } from 'node:path';
import type { SchedulerTrust } from './scheduler-gate.js';

/** `ferry scheduler --control-key FILE --host-keys DIR` (else FERRY_CONTROL_KEY, FERRY_HOST_KEYS, else `<state dir>/keys`). */
export interface SchedulerTrustFlags {
  controlKey?: string;
  hostKeys?: string;
}

/**
 * The scheduler's keys from files: the control-plane key (made on first use, 0600, with its
 * public half beside it for workers), the trusted host key directory, and its replay record.
 */
export async function loadSchedulerTrust(flags: SchedulerTrustFlags, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<SchedulerTrust> {
  const paths = trustPaths({ ...env, ...(flags.controlKey ? { FERRY_CONTROL_KEY: flags.controlKey } : {}), ...(flags.hostKeys ? { FERRY_HOST_KEYS: flags.hostKeys } : {}) });
  const { key, created } = await loadOrCreatePrivateKey(paths.controlKey, { publicPath: paths.controlPub });
  log.info({ controlKey: paths.controlKey, controlPub: paths.controlPub, fingerprint: fingerprint(key), created, hostKeys: paths.hostKeys }, 'control-plane key');
  const seen = await ReplayGuard.open(join(stateDir(env), 'scheduler', 'seen-requests'));
  return { controlKey: key, hostKeys: new HostKeyDir(paths.hostKeys), seen };
}
