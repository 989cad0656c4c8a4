import type { ChaosReport } from './runner.js';

const s = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);

/** The human table: one row per fault, then the failures. */
export function renderTable(r: ChaosReport): string {
  const head = ['fault', 'trials', 'done', 'rolled back', 'paused', 'stuck', 'lost', 'duplicated', 'data mismatch', 'median time', 'max time', 'max downtime', 'verdict'];
  const rows = r.faults.map((f) => [
    `${f.id} ${f.name}`,
    String(f.trials),
    String(f.done),
    String(f.rolledBack),
    String(f.paused),
    String(f.stuck + f.other),
    String(f.lost),
    String(f.duplicated),
    String(f.dataMismatch),
    s(f.medianMs),
    s(f.maxMs),
    s(f.maxDowntimeMs),
    f.ok ? 'OK' : `FAIL (expected ${f.expected})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  const failures = r.faults.flatMap((f) => f.failures.map((x) => `  fault ${f.id} trial ${x.trial} (${x.migrationId ?? 'no id'}): ${x.problems.join('; ')}`));
  out.push('');
  if (failures.length) out.push('failures:', ...failures, '');
  if (r.aborted) out.push(`run incomplete: ${r.aborted}`);
  out.push(`seed ${r.seed}; ${r.settings.sizeMb} MiB at ${r.settings.bwlimitKBps} KiB/s; details per trial and the daemons' logs in ${r.evidenceDir}`);
  out.push(r.ok ? 'all invariants held' : 'INVARIANTS OR EXPECTED OUTCOMES VIOLATED');
  return out.join('\n');
}
