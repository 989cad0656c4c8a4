import type { ApiRole } from '@ferry/core';
import type { TokenStore } from '@ferry/infra';
import { ApiRefusal } from '../errors.js';

/** Who a request is from, as the API decides what it may do and audits it. */
export interface Principal {
  /** The token's name, or `local-root` on the Unix socket. */
  who: string;
  role: ApiRole;
  /** The token's container scope; absent: every container. */
  containers?: string[];
  tokenId?: string;
}

/**
 * The Unix socket's peer: only root (and the server's own user) can open the socket (0600, in a
 * directory only they can enter), so whoever connects is trusted as root: admin, every container.
 */
export const LOCAL_ROOT: Principal = { who: 'local-root', role: 'admin' };

/** The principal of a TCP request from its `Authorization: Bearer <token>` header; a 401 otherwise (naming the token's id when one was given). */
export async function bearer(tokens: TokenStore, header: string | undefined): Promise<Principal> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) throw new ApiRefusal(401, 'UNAUTHENTICATED', header ? 'the Authorization header is not "Bearer <token>"' : 'no token: send Authorization: Bearer <token> (ferry token create; FERRY_TOKEN for the CLI)');
  const check = await tokens.check(m[1]!);
  if (!check.ok) throw new ApiRefusal(401, 'UNAUTHENTICATED', check.why, check.tokenId);
  const r = check.record;
  return { who: r.name, role: r.role, tokenId: r.id, ...(r.containers ? { containers: r.containers } : {}) };
}
