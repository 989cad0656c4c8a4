import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from './connection.js';
import { fields } from '@ferry/core';

/**
 * ferry's Lua scripts, one file each in packages/infra/commands, named BullMQ's way:
 * `<kebab-name>-<numberOfKeys>.lua`, each beginning with a comment that names its KEYS, ARGV and
 * reply. The directory is the same relative URL from src/redis (vitest) and dist/redis (built).
 * Each is registered once per connection with ioredis' defineCommand (EVALSHA, EVAL on NOSCRIPT);
 * callers use the typed wrappers of `scripts(redis)`.
 */
export const COMMANDS_DIR = fileURLToPath(new URL('../../commands/', import.meta.url));

export interface ScriptFile {
  /** The file's name without `-<numberOfKeys>.lua`, e.g. `save-if-version`. */
  name: string;
  numberOfKeys: number;
  lua: string;
  path: string;
}

const FILE_NAME = /^([a-z0-9]+(?:-[a-z0-9]+)*)-(\d+)\.lua$/;

/** Every script file in `dir`, by name. */
export function readScriptFiles(dir = COMMANDS_DIR): Map<string, ScriptFile> {
  const out = new Map<string, ScriptFile>();
  for (const file of readdirSync(dir).sort()) {
    const m = FILE_NAME.exec(file);
    if (!m) continue;
    const path = `${dir}${dir.endsWith('/') ? '' : '/'}${file}`;
    out.set(m[1]!, { name: m[1]!, numberOfKeys: Number(m[2]), lua: readFileSync(path, 'utf8'), path });
  }
  return out;
}

/** The scripts ferry runs and how many keys each takes (the number in its file name). */
const SCRIPTS = {
  'save-if-version': 1,
  'next-epoch': 1,
  fence: 1,
  'release-lock': 1,
  'drop-operation': 6,
  'drop-owner': 2,
  'hold-lease': 1,
  'save-if-leased': 2,
} as const;
type ScriptName = keyof typeof SCRIPTS;

/** The command name a script is registered under on the connection (clear of ioredis' own). */
const commandName = (name: ScriptName) => `ferry_${name.replace(/-/g, '_')}`;

export interface Scripts {
  /** Sets the record at `key` to `json` at `version` only if its stored version is `expected` ('-1': absent). */
  saveIfVersion(key: string, expected: string, version: number, json: string): Promise<boolean>;
  /** Raises the owner hash's epoch by one (converting the first, bare-counter layout); the new epoch. */
  nextEpoch(ownerKey: string): Promise<number>;
  /** Moves the owner hash forward to `epoch`/`host`, never back; the epoch in force. */
  fence(ownerKey: string, epoch: number, host: string): Promise<number>;
  /** Deletes the lock at `key` only if `holder` holds it; whether it did. */
  releaseLock(key: string, holder: string): Promise<boolean>;
  /**
   * Removes an operation's record, its hashes and its log (`keys`: record, progress, starts, replays,
   * log, index) only if the record is at `version` ('-1': absent); whether it did.
   */
  dropOperation(keys: [string, string, string, string, string, string], id: string, version: string): Promise<boolean>;
  /** Deletes a container's owner hash only if its lock is free and its epoch is `epoch`; whether it did. */
  dropOwner(ownerKey: string, lockKey: string, epoch: string): Promise<boolean>;
  /** Takes the lease at `key` if free, or renews it if `held` is its token; the token in force, or null when another holds it. */
  holdLease(key: string, held: string, fresh: string, ttlMs: number): Promise<string | null>;
  /** saveIfVersion while the lease at `leaseKey` holds `token`: 'saved', 'stale' (version moved) or 'lease-lost'. */
  saveIfLeased(key: string, leaseKey: string, expected: string, version: number, json: string, token: string): Promise<'saved' | 'stale' | 'lease-lost'>;
}

let files: Map<string, ScriptFile> | undefined;
const registered = new WeakMap<RedisClient, Scripts>();

/** The scripts on this connection, registering them the first time. */
export function scripts(redis: RedisClient): Scripts {
  const known = registered.get(redis);
  if (known) return known;
  files ??= readScriptFiles();
  for (const [name, numberOfKeys] of Object.entries(SCRIPTS) as [ScriptName, number][]) {
    const f = files.get(name);
    if (!f || f.numberOfKeys !== numberOfKeys) {
      throw new Error(`Lua script ${name}-${numberOfKeys}.lua is missing from ${COMMANDS_DIR}`);
    }
    redis.defineCommand(commandName(name), { numberOfKeys, lua: f.lua });
  }
  const call = (name: ScriptName, ...args: (string | number)[]): Promise<unknown> =>
    (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[commandName(name)]!(...args);
  const s: Scripts = {
    saveIfVersion: async (key, expected, version, json) =>
      (await call('save-if-version', key, expected, String(version), json, fields.record, fields.version)) === 1,
    nextEpoch: async (ownerKey) => Number(await call('next-epoch', ownerKey, fields.owner.epoch)),
    fence: async (ownerKey, epoch, host) => Number(await call('fence', ownerKey, String(epoch), host, fields.owner.epoch, fields.owner.host)),
    releaseLock: async (key, holder) => (await call('release-lock', key, holder)) === 1,
    dropOperation: async (keys, id, version) => (await call('drop-operation', ...keys, id, version, fields.version)) === 1,
    dropOwner: async (ownerKey, lockKey, epoch) => (await call('drop-owner', ownerKey, lockKey, epoch, fields.owner.epoch)) === 1,
    holdLease: async (key, held, fresh, ttlMs) => ((await call('hold-lease', key, held, fresh, String(ttlMs))) as string | null) ?? null,
    saveIfLeased: async (key, leaseKey, expected, version, json, token) => {
      const r = Number(await call('save-if-leased', key, leaseKey, expected, String(version), json, fields.record, fields.version, token));
      return r === 1 ? 'saved' : r === 0 ? 'stale' : 'lease-lost';
    },
  };
  registered.set(redis, s);
  return s;
}
