import { resolve } from 'node:path';

/**
 * Whether `p` is `dir` itself or lies below it, after both are normalized: `..` and `.` segments
 * and repeated slashes cannot walk out (`/var/lib/lxc/web/../../../etc` is not under
 * `/var/lib/lxc/web`). Symbolic links are not resolved here: callers that act on the path
 * resolve them (or refuse them) themselves.
 */
export function isUnder(p: string, dir: string): boolean {
  const d = resolve('/', dir);
  const q = resolve('/', p);
  return q === d || q.startsWith(d === '/' ? '/' : `${d}/`);
}
