import { describeOperation, fields, fmtBytes, fmtMs, hostUsage, shownState, stageText, subjectOf, summarize, type HostInfo, type StoredRecord, type OperationSummary, type StepSummary } from '@ferry/core';
import type { ProgressEntry } from '@ferry/infra';

export { fmtBytes, fmtMs };

const MARK: Record<string, string> = { done: '✓', failed: '✗', running: '…', pending: ' ' };

export function bar(percent: number, width = 24): string {
  const p = Math.max(0, Math.min(100, percent));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${p.toFixed(0).padStart(3)}%`;
}

/** What a running step is doing: a transfer's bar, else its stage and what it said (a scan's file count). */
function progressText(p: ProgressEntry & { percent?: number; pass?: number; rate?: string; message?: string }): string {
  const stage = stageText(p);
  if (p.percent !== undefined) return `${stage} ${bar(p.percent)}${p.rate ? ` ${p.rate}` : ''}`;
  return p.message ? `${stage}: ${p.message}` : stage;
}

function stepLine(s: StepSummary, progress?: ProgressEntry): string {
  const name = `${s.phase === 'rollback' ? '↩ ' : ''}${s.name}`.padEnd(16);
  let line = `  ${MARK[s.state] ?? '?'} ${name} ${s.host.padEnd(10)} ${s.state.padEnd(8)} ${fmtMs(s.ms).padStart(9)}`;
  if (s.attempts > 1) line += `  (${s.attempts} attempts)`;
  if (s.state === 'running' && progress) line += `  ${progressText(progress)}`;
  if (s.error) line += `\n      ${s.error.code}: ${s.error.message}`;
  return line;
}

/** The first line of `ferry status` and `ferry watch`: the operation's kind, id, what and where, state. */
export function headline(r: StoredRecord): string {
  return `${describeOperation(r)}  ${r.state.toUpperCase()}`;
}

export function renderStatus(r: StoredRecord, progress: Record<string, ProgressEntry> = {}): string {
  const s = summarize(r);
  const lines = [headline(r)];
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
  if (s.memoryBytes !== undefined) out.push(`  process state (CRIU dump) ${fmtBytes(s.memoryBytes)}, sent while frozen`);
  if (s.frozenMs !== undefined) out.push(`  frozen → started on target: ${fmtMs(s.frozenMs)} (${s.checkpointMethod})`);
  return out;
}

export function renderList(records: StoredRecord[]): string {
  if (records.length === 0) return 'no operations';
  const rows = records.map((r) => {
    const s = summarize(r);
    return [s.id, s.kind, s.state, subjectOf(r), s.from === s.to ? s.from : `${s.from}→${s.to}`, new Date(s.createdAt).toISOString(), fmtMs(s.totalMs)];
  });
  const head = ['ID', 'KIND', 'STATE', 'CONTAINER', 'HOSTS', 'CREATED', 'TOOK'];
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
    const use = hostUsage(h);
    let load = 'load not reported';
    if (h.capacity) {
      load = `cpu ${pct(use.cpu / h.capacity.cpus)} of ${h.capacity.cpus}  mem ${pct(use.memBytes / h.capacity.memBytes)} (${fmtBytes(use.memBytes)} of ${fmtBytes(h.capacity.memBytes)})`;
    }
    lines.push(
      `${h.name}  ${h.address}  ${load}  disk free ${fmtBytes(h.freeBytes)}  containers ${h.containers.length} (${use.running} running)  checkpoint ${h.capabilities.checkpoint ? 'yes' : 'no'}  seen ${age}s ago`,
    );
    for (const ct of h.containers) {
      const l = ct.load;
      const figures = l ? `  cpu ${l.cpu.toFixed(2)}  mem ${fmtBytes(l.memBytes)}  disk ${l.diskBytes === undefined ? '?' : fmtBytes(l.diskBytes)}` : '';
      lines.push(`  ${ct.name}  ${shownState(ct)}${figures}  ${ct.ip ?? ''}  ${ct.mac ?? ''}`.trimEnd());
    }
  }
  return lines.join('\n');
}
