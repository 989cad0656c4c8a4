import { z } from 'zod';
import { canonicalJson } from '../trust/canonical.js';
import { Signature } from '../trust/signed-job.js';
import { ApiRole } from './roles.js';
import { ContainerScope } from './scope.js';

/**
 * API bearer tokens. A token is `ferry_<id>_<secret>`: the id names its record (public: `ferry
 * token list` shows it, `revoke` takes it), the secret (32 random bytes, base64url) is shown once
 * when the token is made and never stored: its record holds the SHA-256 of the whole token. The
 * record is signed by the control-plane key, so whoever can write to Redis cannot mint a token or
 * widen one's role or scope (see README "Security model" for what such a writer still can).
 */
export const TOKEN_PREFIX = 'ferry_';
export const TokenId = z.string().regex(/^[a-z0-9]{10}$/, 'not a token id (10 lower-case letters and digits)');
export const TokenName = z
  .string()
  .min(1, { error: 'a token name is empty', abort: true })
  .max(64, { error: 'a token name is longer than 64 characters', abort: true })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.@+-]*$/, "a token name may hold only letters, digits, '_', '.', '@', '+', '-' and starts with a letter or digit");

const TOKEN = /^ferry_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$/;

/** The id of a token string of the right form, else null (nothing about it is checked yet). */
export function tokenIdOf(token: string): string | null {
  return TOKEN.exec(token)?.[1] ?? null;
}

/** What is stored for a token, under its id (keys.ts `apiTokens`). */
export const TokenRecord = z.strictObject({
  v: z.literal(1),
  id: TokenId,
  name: TokenName,
  role: ApiRole,
  /** Container name patterns; absent: every container. */
  containers: ContainerScope.optional(),
  createdAt: z.int().positive(),
  /** SHA-256 of the whole token, hex. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** The control-plane key's signature over the rest (tokenMessage). */
  sig: Signature,
});
export type TokenRecord = z.infer<typeof TokenRecord>;

/** What `ferry token list` shows of a token: never its hash or signature. */
export type TokenInfo = Omit<TokenRecord, 'v' | 'hash' | 'sig'>;

export function tokenInfo(r: TokenRecord): TokenInfo {
  return { id: r.id, name: r.name, role: r.role, ...(r.containers ? { containers: r.containers } : {}), createdAt: r.createdAt };
}

/** The bytes the control-plane key signs for a token record (a purpose tag first, as for jobs). */
export function tokenMessage(r: Omit<TokenRecord, 'sig'>): string {
  return canonicalJson({ purpose: 'ferry/api-token/v1', v: r.v, id: r.id, name: r.name, role: r.role, containers: r.containers ?? null, createdAt: r.createdAt, hash: r.hash });
}
