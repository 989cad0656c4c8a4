import type { StoredRecord } from './record.js';
import { summarize } from './summary.js';

/**
 * How ferry writes figures and names an operation's containers for people: shared by the CLI's
 * text and the dashboard's HTML, so both say the same thing.
 */
export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

export function fmtMs(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** The containers an operation is about: `web`, a clone's `web→web2`, a unify's `u1,u2`. */
export function subjectOf(r: StoredRecord): string {
  if (r.state === 'rejected') {
    const q = typeof r.request === 'object' && r.request !== null ? (r.request as Record<string, unknown>) : {};
    const text = (k: string) => (typeof q[k] === 'string' ? q[k] : '?');
    return r.kind === 'clone' ? `${text('container')}→${text('name')}` : text('container');
  }
  if (r.kind === 'unify') return r.request.containers.join(',');
  if (r.kind === 'clone') return `${r.request.container}→${r.request.name}`;
  return r.request.container;
}

/** A running step's stage as its progress names it: `precopy pass 2`, `final-sync`. */
export function stageText(p: { stage: string; pass?: unknown }): string {
  return `${p.stage}${typeof p.pass === 'number' && p.pass ? ` pass ${p.pass}` : ''}`;
}

/** An operation in one line, without its state: `migrate m-…: web h1 → h2 (live)`, `clone m-…: web → web2 (h1 → h2)`. */
export function describeOperation(r: StoredRecord): string {
  const s = summarize(r);
  if (r.state !== 'rejected' && r.kind === 'unify') {
    const q = r.request;
    const how = [q.revert ? 'revert' : q.mode, ...(q.dryRun ? ['dry run'] : [])].join(', ');
    return `unify ${s.id}: ${q.containers.join(', ')} on ${s.from} (${how})`;
  }
  if (s.kind === 'clone') return `clone ${s.id}: ${s.container} → ${s.name ?? '?'} (${s.from} → ${s.to})`;
  return `${s.kind} ${s.id}: ${s.container} ${s.from} → ${s.to}${s.mode ? ` (${s.mode})` : ''}`;
}
