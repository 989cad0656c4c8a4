import { summarize } from '@ferry/core';
import type { LabInfo } from '../lab/index.js';
import { localFerry, openClient, submitMigration, waitFor } from '@ferry/cli';
import { ClientProbe } from '../probe/client-probe.js';

export interface Measured {
  migrationId: string;
  state: string;
  totalMs: number;
  downtimeMs: number;
  bytesTransferred: number;
  precopyPasses: number;
  mode?: string;
  frozenMs?: number;
  /** Bytes of process state (a live migration's CRIU dump). */
  memoryBytes?: number;
  answeredAfter: boolean;
  probes: { ok: number; failed: number };
  steps: { name: string; host: string; ms: number | null; state: string }[];
  error?: unknown;
  record: Parameters<typeof summarize>[0];
}

/**
 * Migrates a lab container while a client in the lab probes its HTTP every `probeMs`, and measures
 * what the client saw: the longest gap between successful answers is the downtime.
 */
export async function measureMigration(
  lab: LabInfo,
  opts: {
    container: string;
    ip: string;
    from: string;
    to: string;
    probeMs?: number;
    verify?: 'off' | 'changed' | 'full';
    /** The migration's mode (default auto: what the hosts allow). */
    mode?: 'auto' | 'live' | 'restart';
    onProgress?: (line: string) => void;
  },
): Promise<Measured> {
  const probe = new ClientProbe(lab.client.netns, `http://${opts.ip}/`, opts.probeMs ?? 20);
  const c = await openClient();
  try {
    if (!(await probe.waitForAnswer(10_000))) throw new Error(`the client gets no HTTP answer from ${opts.ip} before the migration`);
    const t0 = Date.now();
    const id = await submitMigration(c, { container: opts.container, from: opts.from, to: opts.to, ...(opts.mode ? { mode: opts.mode } : {}), ...(opts.verify ? { verify: opts.verify } : {}) });
    let last = '';
    const r = await waitFor(localFerry(c), id, (rec) => {
      const line = rec.state === 'rejected' ? 'rejected' : rec.steps.map((s) => `${s.name}:${s.state}`).join(' ');
      if (line !== last) opts.onProgress?.((last = line));
    });
    const t1 = Date.now();
    // Keep probing a little after the end: the client must be answered from the target.
    const answeredAfter = await probe.waitForAnswer(5000);
    await new Promise((res) => setTimeout(res, 1000));
    const tEnd = Date.now();
    await probe.stop();
    const s = summarize(r);
    return {
      migrationId: id,
      state: s.state,
      totalMs: s.totalMs ?? t1 - t0,
      downtimeMs: probe.longestGap(t0, tEnd),
      bytesTransferred: s.bytesTransferred,
      precopyPasses: s.precopyPasses,
      ...(s.mode ? { mode: s.mode } : {}),
      ...(s.frozenMs !== undefined ? { frozenMs: s.frozenMs } : {}),
      ...(s.memoryBytes !== undefined ? { memoryBytes: s.memoryBytes } : {}),
      answeredAfter,
      probes: { ok: probe.samples.filter((x) => x.ok).length, failed: probe.samples.filter((x) => !x.ok).length },
      steps: s.steps.map((x) => ({ name: x.name, host: x.host, ms: x.ms ?? null, state: x.state })),
      ...(s.error ? { error: s.error } : {}),
      record: r,
    };
  } finally {
    await probe.stop();
    await c.close();
  }
}
