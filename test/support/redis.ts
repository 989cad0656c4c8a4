import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect, startEmbeddedRedis, stopEmbeddedRedis, type RedisClient } from '@ferry/infra';

/** A private, real redis-server for one test file; each test takes a fresh key prefix. */
export async function testRedis(): Promise<{ url: string; dir: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-redis-'));
  const url = await startEmbeddedRedis({ dir });
  return { url, dir, stop: async () => void (await stopEmbeddedRedis({ dir, purge: true })) };
}

export function freshPrefix(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

export async function quit(r: RedisClient): Promise<void> {
  await r.quit().catch(() => r.disconnect());
}

export { connect };
