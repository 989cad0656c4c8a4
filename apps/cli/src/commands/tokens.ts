import type { TokenInfo } from '@ferry/core';
import { TokenStore } from '@ferry/infra';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import type { In } from '../service/inputs.js';

/**
 * `ferry token create|list|revoke`: the API's bearer tokens (packages/infra/src/api/token-store.ts),
 * kept in Redis as hashes, signed by the control-plane key.
 */
const tokens = async (c: Client) => new TokenStore(c.redis, c.store.prefix, await c.controlKey());

export async function tokenCreate(c: Client, i: In<'tokenCreate'>): Promise<{ token: string; info: TokenInfo }> {
  return (await tokens(c)).create(i);
}

export async function tokenList(c: Client): Promise<(TokenInfo & { valid: boolean })[]> {
  return (await tokens(c)).list();
}

export async function tokenRevoke(c: Client, idOrName: string): Promise<{ revoked: TokenInfo }> {
  const revoked = await (await tokens(c)).revoke(idOrName);
  if (!revoked) throw new ExitError(EXIT.badInput, `token: no token with id or name '${idOrName}' (ferry token list)`);
  return { revoked };
}

const scopeOf = (t: TokenInfo) => (t.containers ? t.containers.join(',') : '*');

export function renderTokens(list: (TokenInfo & { valid: boolean })[]): string {
  if (!list.length) return 'no tokens (ferry token create --role viewer|operator|admin)';
  const rows = list.map((t) => [t.id, t.name, t.role, scopeOf(t), t.createdAt ? new Date(t.createdAt).toISOString() : '?', t.valid ? '' : 'NOT SIGNED by the control key: refused']);
  const head = ['id', 'name', 'role', 'containers', 'created', ''];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

export function renderCreated(t: { token: string; info: TokenInfo }): string {
  return [
    t.token,
    `token ${t.info.id} '${t.info.name}': role ${t.info.role}, containers ${scopeOf(t.info)}`,
    'It is shown this once; ferry keeps only its hash. Give it as FERRY_TOKEN (with FERRY_API) or --token.',
  ].join('\n');
}
