import { join } from 'node:path';
import { HostName } from '@ferry/core';
import { stateDir } from '../paths.js';

/**
 * Where the keys are by default: one directory, `<state dir>/keys`, so that everything on one
 * machine with the default state dir finds them with no configuration (the scheduler makes the
 * control key, the CLI reads it, each worker writes its public key into `hosts/`). On a fleet:
 * copy `control.pub` to each worker host (--control-key / FERRY_CONTROL_PUB) and each host's
 * `hosts/<host>.pub` to the scheduler's host (--host-keys / FERRY_HOST_KEYS), until `ferry host
 * join` exists. Users need none of it: ferry's API holds the control key for them.
 */
export function trustPaths(env: NodeJS.ProcessEnv = process.env) {
  const dir = join(stateDir(env), 'keys');
  const controlKey = env.FERRY_CONTROL_KEY || join(dir, 'control.key');
  return {
    /** The control plane's private key (scheduler, CLI): FERRY_CONTROL_KEY, 0600, made on first use. */
    controlKey,
    /** Its public key (workers): FERRY_CONTROL_PUB, else beside the private key. */
    controlPub: env.FERRY_CONTROL_PUB || publicPathOf(controlKey),
    /** Trusted host public keys, `<host>.pub` (the scheduler reads, a worker writes its own): FERRY_HOST_KEYS. */
    hostKeys: env.FERRY_HOST_KEYS || join(dir, 'hosts'),
  };
}
export type TrustPaths = ReturnType<typeof trustPaths>;

/** `x.key` → `x.pub` (any other name: `.pub` appended). */
export function publicPathOf(privatePath: string): string {
  return `${privatePath.replace(/\.key$/, '')}.pub`;
}

/** A host's public key file in a host key directory (the name checked: it becomes a path). */
export function hostKeyFile(dir: string, host: string): string {
  return join(dir, `${HostName.parse(host)}.pub`);
}
