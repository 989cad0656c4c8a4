import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { fingerprint, HostKeyDir, loadOrCreatePrivateKey, publicKeyOf, readPublicKeyFile, trustPaths } from '@ferry/infra';
import type { HostConfig } from '../config.js';
import type { WorkerTrust } from './job-gate.js';

/** This host's own signing key, in its state dir (0600, made on first start). */
export const hostKeyFile = (stateDir: string): string => join(stateDir, 'host.key');

/**
 * A worker's keys from files: its host key (made on first start; the public half written to the
 * host key directory as `<host>.pub`, where on one machine the scheduler reads it, and from where
 * on a fleet it is copied to the scheduler's), and the control plane's public key. A worker takes
 * no job before it has the latter: while the file is missing (a scheduler not yet started on this
 * machine, a file not yet copied here) it waits and says so.
 */
export async function loadWorkerTrust(host: HostConfig, log: Logger, pollMs = 2000): Promise<WorkerTrust> {
  const defaults = trustPaths();
  const controlPub = host.controlKeyFile ?? defaults.controlPub;
  const hostKeys = new HostKeyDir(host.hostKeysDir ?? defaults.hostKeys);
  const { key: hostKey, created } = await loadOrCreatePrivateKey(hostKeyFile(host.stateDir));
  const published = await hostKeys.publish(host.name, publicKeyOf(hostKey));
  log.info({ hostKey: hostKeyFile(host.stateDir), fingerprint: fingerprint(hostKey), created, published: join(hostKeys.where, `${host.name}.pub`), was: published }, 'host key');
  const controlKey = await waitForKey(controlPub, log, pollMs);
  log.info({ controlPub, fingerprint: fingerprint(controlKey) }, 'control-plane key: only jobs it signed are run');
  return { controlKey, hostKey };
}

async function waitForKey(file: string, log: Logger, pollMs: number): Promise<KeyObject> {
  let said = 0;
  for (;;) {
    const key = await readPublicKeyFile(file);
    if (key) return key;
    if (Date.now() - said > 60_000) {
      log.warn({ controlPub: file }, `no control-plane public key at ${file}: waiting for it (the scheduler makes it on this machine; on another host copy its control.pub here, or pass --control-key)`);
      said = Date.now();
    }
    await sleep(pollMs);
  }
}
