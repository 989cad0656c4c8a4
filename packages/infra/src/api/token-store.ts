import { createHash, randomBytes, randomInt, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { RedisClient } from '../redis/connection.js';
import { FerryError, keys, parseOrThrow, TOKEN_PREFIX, tokenIdOf, tokenInfo, tokenMessage, TokenRecord, type Keys, type ApiRole, type TokenInfo } from '@ferry/core';
import { publicKeyOf, signText, verifyText } from '../trust/ed25519.js';

/** What a presented token turned out to be. */
export type TokenCheck = { ok: true; record: TokenRecord } | { ok: false; tokenId?: string; why: string };

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

/**
 * API tokens in Redis (keys.ts `apiTokens`: token id → JSON TokenRecord). Only a hash of each token
 * is stored, and every record is signed by the control-plane key: a record whose signature does not
 * verify is no token (someone wrote it into Redis by hand). Made, listed and revoked by `ferry token`;
 * checked by the API server on every request.
 */
export class TokenStore {
  private readonly k: Keys;
  private readonly publicKey: KeyObject;

  constructor(
    readonly redis: RedisClient,
    prefix: string,
    /** The control-plane key: its private half signs new tokens (create), its public half checks them. */
    private readonly controlKey: KeyObject,
  ) {
    this.k = keys(prefix);
    this.publicKey = controlKey.type === 'private' ? publicKeyOf(controlKey) : controlKey;
  }

  /** A new token: returned once, here, and never again (its record keeps a hash). */
  async create(o: { role: ApiRole; name?: string; containers?: string[] }, now = Date.now()): Promise<{ token: string; info: TokenInfo }> {
    if (this.controlKey.type !== 'private') throw new FerryError('CONTROL_KEY_UNREADABLE', 'making a token needs the control-plane private key');
    if (o.name !== undefined && (await this.find(o.name))) throw new FerryError('INVALID_INPUT', `name: a token named '${o.name}' exists already (ferry token list)`);
    for (;;) {
      const id = Array.from({ length: 10 }, () => ID_CHARS[randomInt(ID_CHARS.length)]).join('');
      const token = `${TOKEN_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
      const unsigned = { v: 1 as const, id, name: o.name ?? id, role: o.role, ...(o.containers ? { containers: o.containers } : {}), createdAt: now, hash: digest(token) };
      // Bad input (a name or pattern that cannot be) is a ValidationError naming each field.
      const record = parseOrThrow(TokenRecord, { ...unsigned, sig: signText(this.controlKey, tokenMessage(unsigned)) });
      if (await this.redis.hsetnx(this.k.apiTokens, id, JSON.stringify(record))) return { token, info: tokenInfo(record) };
    }
  }

  /** Every token, oldest first; `valid` false for a record the control-plane key did not sign. */
  async list(): Promise<(TokenInfo & { valid: boolean })[]> {
    const all = await this.redis.hgetall(this.k.apiTokens);
    const out: (TokenInfo & { valid: boolean })[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const r = this.parse(raw);
      out.push(r ? { ...tokenInfo(r), valid: r.id === id } : { id, name: '?', role: 'viewer', createdAt: 0, valid: false });
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** Removes a token, named by its id or name; its record as it was, or null when there was none. */
  async revoke(idOrName: string): Promise<TokenInfo | null> {
    const hit = await this.find(idOrName);
    if (!hit) return null;
    await this.redis.hdel(this.k.apiTokens, hit.id);
    return hit.info;
  }

  /** Checks a presented token: of the right form, recorded, signed by the control key, the same secret. */
  async check(token: string): Promise<TokenCheck> {
    const id = tokenIdOf(token);
    if (!id) return { ok: false, why: `not a ferry token (${TOKEN_PREFIX}<id>_<secret>)` };
    const raw = await this.redis.hget(this.k.apiTokens, id);
    if (raw === null) return { ok: false, tokenId: id, why: `token ${id} is unknown or revoked` };
    const r = this.parse(raw);
    if (!r || r.id !== id) return { ok: false, tokenId: id, why: `token ${id}'s record is not signed by the control-plane key` };
    if (!timingSafeEqual(Buffer.from(digest(token), 'hex'), Buffer.from(r.hash, 'hex'))) return { ok: false, tokenId: id, why: `token ${id}: wrong secret` };
    return { ok: true, record: r };
  }

  /** A record by id or name (ids first), if one is stored and signed. */
  private async find(idOrName: string): Promise<{ id: string; info: TokenInfo } | null> {
    const all = await this.redis.hgetall(this.k.apiTokens);
    const byId = all[idOrName];
    if (byId !== undefined) {
      const r = this.parse(byId);
      return { id: idOrName, info: r ? tokenInfo(r) : { id: idOrName, name: '?', role: 'viewer', createdAt: 0 } };
    }
    for (const raw of Object.values(all)) {
      const r = this.parse(raw);
      if (r?.name === idOrName) return { id: r.id, info: tokenInfo(r) };
    }
    return null;
  }

  /** A stored record, if it is one and signed by the control key. */
  private parse(raw: string): TokenRecord | null {
    let r: TokenRecord;
    try {
      const p = TokenRecord.safeParse(JSON.parse(raw));
      if (!p.success) return null;
      r = p.data;
    } catch {
      return null;
    }
    const { sig, ...unsigned } = r;
    return verifyText(this.publicKey, tokenMessage(unsigned), sig) ? r : null;
  }
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
