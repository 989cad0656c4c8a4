import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError, parseRedisUrl, type RedisTarget } from '@ferry/core';
import { run, succeeds } from '../exec/run.js';
import { stateDir } from '../paths.js';

export interface RedisEndpoint {
  url: string;
  /** The URL read (parseRedisUrl): one server, a Sentinel set or a Cluster. */
  target: RedisTarget;
  /** True when ferry started (or found) its own private redis-server. */
  embedded: boolean;
  /** True when this call started it (so the caller may stop it when done). */
  started: boolean;
}

export interface EmbeddedOptions {
  dir?: string;
  /** AOF fsync policy: `everysec` (default) loses at most ~1 s of writes on a crash; `always` none. */
  appendfsync?: 'everysec' | 'always';
  /**
   * Memory cap (redis syntax: 512mb, 2gb; default FERRY_REDIS_MAXMEMORY or 1gb). With noeviction,
   * writes past it are refused (an error a caller sees), never keys silently dropped: a runaway
   * writer, or a hostile one, cannot take the host's memory. ferry's own use stays far below it
   * (docs/redis-keys.md: a few MiB, flat with history).
   */
  maxmemory?: string;
}

const sockPath = (dir: string) => join(dir, 'redis.sock');

function embeddedDir(opts: EmbeddedOptions): string {
  return opts.dir ?? join(stateDir(), 'redis');
}

async function ping(sock: string): Promise<boolean> {
  return existsSync(sock) && succeeds('redis-cli', ['-s', sock, 'ping'], { timeoutMs: 2000 });
}

/**
 * REDIS_URL when set (checked here, before anything starts: a bad one is a ValidationError naming
 * every problem); otherwise ferry's own private redis-server on a unix socket in the state
 * directory, with AOF on and `noeviction` (queues must never be evicted). Reuses a running one.
 */
export async function ensureRedis(opts: EmbeddedOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<RedisEndpoint> {
  if (env.REDIS_URL) return { url: env.REDIS_URL, target: parseRedisUrl(env.REDIS_URL), embedded: false, started: false };
  const fsync = env.FERRY_REDIS_APPENDFSYNC;
  if (fsync !== undefined && fsync !== 'everysec' && fsync !== 'always') {
    throw new FerryError('BAD_CONFIG', `FERRY_REDIS_APPENDFSYNC must be everysec or always, not '${fsync}'`);
  }
  if (fsync && !opts.appendfsync) opts = { ...opts, appendfsync: fsync };
  const running = await ping(sockPath(embeddedDir(opts)));
  const url = await startEmbeddedRedis(opts);
  return { url, target: parseRedisUrl(url), embedded: true, started: !running };
}

export async function startEmbeddedRedis(opts: EmbeddedOptions = {}): Promise<string> {
  const dir = embeddedDir(opts);
  const sock = sockPath(dir);
  if (await ping(sock)) return `unix://${sock}`;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const conf = [
    'port 0',
    `unixsocket ${sock}`,
    'unixsocketperm 700',
    `dir ${dir}`,
    'appendonly yes',
    `appendfsync ${opts.appendfsync ?? 'everysec'}`,
    `maxmemory ${opts.maxmemory ?? process.env.FERRY_REDIS_MAXMEMORY ?? '1gb'}`,
    'maxmemory-policy noeviction',
    'daemonize yes',
    `pidfile ${join(dir, 'redis.pid')}`,
    `logfile ${join(dir, 'redis.log')}`,
    'save ""',
  ].join('\n');
  await writeFile(join(dir, 'redis.conf'), `${conf}\n`);
  try {
    await run('redis-server', [join(dir, 'redis.conf')], { timeoutMs: 10_000 });
  } catch (e) {
    throw new FerryError('REDIS_START_FAILED', `could not start the embedded redis-server (is it installed?): ${(e as Error).message}`, { cause: e });
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await ping(sock)) return `unix://${sock}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new FerryError('REDIS_START_FAILED', `embedded redis-server did not answer on ${sock}; see ${join(dir, 'redis.log')}`);
}

/** Stops the embedded redis-server (it writes its AOF first). Keeps the data unless `purge`. */
export async function stopEmbeddedRedis(opts: EmbeddedOptions & { purge?: boolean } = {}): Promise<boolean> {
  const dir = embeddedDir(opts);
  const sock = sockPath(dir);
  let stopped = false;
  if (await ping(sock)) {
    await run('redis-cli', ['-s', sock, 'shutdown'], { timeoutMs: 10_000, okExitCodes: [0, 1] }).catch(() => undefined);
    stopped = true;
  } else {
    const pid = Number((await readFile(join(dir, 'redis.pid'), 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
        stopped = true;
      } catch {
        /* not running */
      }
    }
  }
  if (opts.purge) await rm(dir, { recursive: true, force: true });
  return stopped;
}
