import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { JOB_TTL_MS, type HostInfo } from '@ferry/core';
import { JobSigner, newSigningKey, publicKeyOf, ReplayGuard, signHostEntry, type HostKeySource, type HostRegistry } from '@ferry/infra';
import type { WorkerTrust } from '../../apps/worker/src/trust/job-gate.js';
import type { SchedulerTrust } from '../../apps/scheduler/src/trust/scheduler-gate.js';

/**
 * Keys for tests that run schedulers and workers in-process: one control-plane key, one key per
 * host made on first use, and an in-memory host key source standing for the scheduler's directory
 * of trusted host keys. `signer` signs jobs as the scheduler and the CLI do.
 */
export class TestKeys {
  readonly controlKey = newSigningKey();
  readonly signer = new JobSigner(this.controlKey);
  private readonly hosts = new Map<string, KeyObject>();
  /** Hosts whose public key the scheduler trusts (every host a key was made for, unless removed). */
  readonly trusted = new Set<string>();

  hostKey(name: string): KeyObject {
    let k = this.hosts.get(name);
    if (!k) {
      k = newSigningKey();
      this.hosts.set(name, k);
      this.trusted.add(name);
    }
    return k;
  }

  readonly hostKeys: HostKeySource = {
    where: 'the test keys',
    get: async (host) => (this.trusted.has(host) && this.hosts.has(host) ? publicKeyOf(this.hosts.get(host)!) : null),
  };

  worker(name: string): WorkerTrust {
    return { controlKey: publicKeyOf(this.controlKey), hostKey: this.hostKey(name) };
  }

  /** The scheduler's trust; its replay record in `dir`. */
  scheduler(dir: string): SchedulerTrust {
    return { controlKey: this.controlKey, hostKeys: this.hostKeys, seen: new ReplayGuard(join(dir, 'seen-requests')) };
  }

  /** Publishes a host's registry entry signed with that host's key, as its worker does. */
  publish(registry: HostRegistry, info: HostInfo): Promise<void> {
    return registry.publish(info, signHostEntry(this.hostKey(info.name), info));
  }

  /** A job's data signed for `jobId` on `queue` (a step job's TTL unless given). */
  sign<D extends object>(queue: string, jobId: string, name: string, data: D, ttlMs: number = JOB_TTL_MS.step) {
    return this.signer.sign(queue, jobId, name, data, ttlMs);
  }
}
