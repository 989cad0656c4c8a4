import { fields, shownState, summarize, type HostInfo, type StoredRecord, type OperationSummary, type StepSummary } from '@ferry/core';
import type { ProgressEntry } from '@ferry/infra';

const MARK: Record<string, string> = { done: '✓', failed: '✗', running: '…', pending: ' ' };

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

export function bar(percent: number, width = 24): string {
  const p = Math.max(0, Math.min(100, percent));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${p.toFixed(0).padStart(3)}%`;
}

function stepLine(s: StepSummary, progress?: ProgressEntry): string {
  const name = `${s.phase === 'rollback' ? '↩ ' : ''}${s.name}`.padEnd(16);
  let line = `  ${MARK[s.state] ?? '?'} ${name} ${s.host.padEnd(10)} ${s.state.padEnd(8)} ${fmtMs(s.ms).padStart(9)}`;
  if (s.attempts > 1) line += `  (${s.attempts} attempts)`;
  if (s.state === 'running' && progress) {
    const p = progress as ProgressEntry & { percent?: number; pass?: number; bytes?: number; rate?: string };
    if (p.percent !== undefined) line += `  ${p.stage}${p.pass ? ` pass ${p.pass}` : ''} ${bar(p.percent)}${p.rate ? ` ${p.rate}` : ''}`;
    else line += `  ${p.stage}`;
  }
  if (s.error) line += `\n      ${s.error.code}: ${s.error.message}`;
  return line;
}

export function renderStatus(r: StoredRecord, progress: Record<string, ProgressEntry> = {}): string {
  const s = summarize(r);
  const lines = [
    s.kind === 'clone'
      ? `clone ${s.id}: ${s.container} → ${s.name} (${s.from} → ${s.to})  ${s.state.toUpperCase()}`
      : `migration ${s.id}: ${s.container} ${s.from} → ${s.to}${s.mode ? ` (${s.mode})` : ''}  ${s.state.toUpperCase()}`,
  ];
  const idx = { forward: 0, rollback: 0 };
  for (const st of s.steps) {
    const i = idx[st.phase]++;
    lines.push(stepLine(st, progress[fields.progress(st.phase, i)]));
  }
  lines.push(...figures(s));
  if (s.error && s.state !== 'done') lines.push(`  error: ${s.error.code}: ${s.error.message}`);
  if (s.state === 'paused') lines.push(`  waiting: ferry retry ${s.id}  or  ferry cancel ${s.id}`);
  return lines.join('\n');
}

function figures(s: OperationSummary): string[] {
  const out: string[] = [];
  if (s.totalMs !== undefined) out.push(`  total ${fmtMs(s.totalMs)}`);
  if (s.bytesTransferred) out.push(`  moved ${fmtBytes(s.bytesTransferred)} in ${s.precopyPasses} pre-copy pass(es) + final sync`);
  if (s.frozenMs !== undefined) out.push(`  frozen → started on target: ${fmtMs(s.frozenMs)} (${s.checkpointMethod})`);
  return out;
}

export function renderList(records: StoredRecord[]): string {
  if (records.length === 0) return 'no migrations';
  const rows = records.map((r) => {
    const s = summarize(r);
    return [s.id, s.state, s.container, `${s.from}→${s.to}`, new Date(s.createdAt).toISOString(), fmtMs(s.totalMs)];
  });
  const head = ['ID', 'STATE', 'CONTAINER', 'ROUTE', 'CREATED', 'TOOK'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

/**
 * `ferry hosts`: each host with its load as its worker measured it (smoothed over about a minute):
 * CPU and memory its containers use against what it has, free disk on its LXC path, containers;
 * then each container with its state and load.
 */
export function renderHosts(hosts: HostInfo[], now = Date.now()): string {
  if (hosts.length === 0) return 'no hosts registered: start a worker on each host (ferry worker --host NAME)';
  const lines: string[] = [];
  for (const h of hosts) {
    const age = Math.round((now - h.lastSeen) / 1000);
    const running = h.containers.filter((c) => c.state === 'RUNNING');
    let load = 'load not reported';
    if (h.capacity) {
      const cpu = running.reduce((a, c) => a + (c.load?.cpu ?? 0), 0);
      const mem = running.reduce((a, c) => a + (c.load?.memBytes ?? 0), 0);
      load = `cpu ${pct(cpu / h.capacity.cpus)} of ${h.capacity.cpus}  mem ${pct(mem / h.capacity.memBytes)} (${fmtBytes(mem)} of ${fmtBytes(h.capacity.memBytes)})`;
    }
    lines.push(
      `${h.name}  ${h.address}  ${load}  disk free ${fmtBytes(h.freeBytes)}  containers ${h.containers.length} (${running.length} running)  checkpoint ${h.capabilities.checkpoint ? 'yes' : 'no'}  seen ${age}s ago`,
    );
    for (const ct of h.containers) {
      const l = ct.load;
      const figures = l ? `  cpu ${l.cpu.toFixed(2)}  mem ${fmtBytes(l.memBytes)}  disk ${l.diskBytes === undefined ? '?' : fmtBytes(l.diskBytes)}` : '';
      lines.push(`  ${ct.name}  ${shownState(ct)}${figures}  ${ct.ip ?? ''}  ${ct.mac ?? ''}`.trimEnd());
    }
  }
  return lines.join('\n');
}
