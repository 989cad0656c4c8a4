import { z } from 'zod';
import { compileGlob } from '../glob.js';

/**
 * A token's container scope: name patterns (`web-*`, `db-?`, `[ab]-cache`; glob.ts, matched in
 * linear time); a container is in scope when one of them matches its whole name. A token without
 * a scope reaches every container.
 */
export const ScopePattern = z
  .string()
  .min(1, { error: 'a container pattern is empty', abort: true })
  .max(64, { error: 'a container pattern is longer than 64 characters', abort: true })
  .regex(/^[A-Za-z0-9_.*?[\]!^-]+$/, "a container pattern may hold only letters, digits, '_', '.', '-' and the wildcards * ? [...]");
export const ContainerScope = z.array(ScopePattern).min(1, 'a container scope needs at least one pattern').max(32, 'at most 32 container patterns');
export type ContainerScope = z.infer<typeof ContainerScope>;

/** A test for "this container is in scope"; every container is without a scope. */
export function scopeMatcher(scope: readonly string[] | undefined): (container: string) => boolean {
  if (!scope) return () => true;
  const ms = scope.map((p) => compileGlob(p));
  return (c) => ms.some((m) => m.test(c));
}

/** The containers among `names` that `scope` does not cover (none: all are in scope). */
export function outOfScope(scope: readonly string[] | undefined, names: readonly string[]): string[] {
  const inScope = scopeMatcher(scope);
  return names.filter((n) => !inScope(n));
}
