import { fileURLToPath } from 'node:url';
import { run } from '@ferry/infra';

/**
 * The client's HTTP probe (main.ts beside this file, compiled), run in the client namespace; the
 * demo, the bench and the chaos suite measure downtime with it. The path is found from this module
 * whether it runs compiled (dist/probe) or from source under vitest (src/probe): both sit two
 * levels below apps/lab.
 */
const PROBE = fileURLToPath(new URL('../../dist/probe/main.js', import.meta.url));

export interface Sample {
  t: number;
  ok: boolean;
}

/** An HTTP probe running in a network namespace (null: this one); collects samples until stopped. */
export class ClientProbe {
  readonly samples: Sample[] = [];
  private readonly abort = new AbortController();
  private readonly done: Promise<unknown>;

  constructor(netns: string | null, url: string, intervalMs = 20, maxMs = 900_000) {
    let buf = '';
    this.done = run(process.execPath, [PROBE, url, String(intervalMs), String(maxMs)], {
      ...(netns ? { netns } : {}),
      signal: this.abort.signal,
      timeoutMs: maxMs + 10_000,
      onStdout: (chunk) => {
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) {
          const [s, t] = l.split(' ');
          if (t) this.samples.push({ ok: s === 'ok', t: Number(t) });
        }
      },
    }).catch(() => undefined); // ended by stop(): the kill is the expected end
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  /**
   * Longest time without a successful answer within [from, to]: between answers, and from `from`
   * to the first answer and from the last answer to `to` (an outage at either edge counts too).
   */
  longestGap(from: number, to: number): number {
    const oks = this.samples.filter((s) => s.ok && s.t >= from && s.t <= to).map((s) => s.t);
    if (oks.length === 0) return to - from;
    let gap = Math.max(oks[0]! - from, to - oks[oks.length - 1]!);
    for (let i = 1; i < oks.length; i++) gap = Math.max(gap, oks[i]! - oks[i - 1]!);
    return gap;
  }

  answeredSince(t: number): boolean {
    return this.samples.some((s) => s.ok && s.t >= t);
  }

  async waitForAnswer(timeoutMs: number, since = Date.now()): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.answeredSince(since)) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.answeredSince(since);
  }
}
