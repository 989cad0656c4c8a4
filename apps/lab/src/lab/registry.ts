import { setTimeout as sleep } from 'node:timers/promises';
import { connect, HostRegistry } from '@ferry/infra';
import type { LabInfo } from './types.js';

/**
 * Waits until the host's worker has published `container` in the host registry. Workers publish
 * on a heartbeat (every few seconds); a migration requested before that is refused with "does
 * not exist on host", so a lab container is only handed out once its worker knows it.
 */
export async function waitPublished(info: LabInfo, host: string, container: string, timeoutMs = 10_000): Promise<boolean> {
  const redis = connect(info.redisUrl);
  redis.on('error', () => undefined); // reported as a timeout below, not as an unhandled event
  try {
    const registry = new HostRegistry(redis, info.prefix);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      // Bounded: with BullMQ's options a command waits forever for an unreachable Redis.
      const h = await Promise.race([registry.get(host).catch(() => null), sleep(1000).then(() => null)]);
      // RUNNING, not only present: the CLI refuses some requests by the state it reads here.
      if (h?.containers.some((c) => c.name === container && c.state === 'RUNNING')) return true;
      await sleep(100);
    }
    return false;
  } finally {
    redis.disconnect();
  }
}
