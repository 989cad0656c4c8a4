import { fileURLToPath } from 'node:url';
import { run } from '@ferry/infra';

export interface ProbeSample {
  t: number;
  ok: boolean;
}

/** An HTTP probe running in a namespace; collects samples until stopped. */
export class ClientProbe {
  readonly samples: ProbeSample[] = [];
  private readonly abort = new AbortController();
  private done: Promise<unknown>;

  constructor(netns: string, url: string, intervalMs = 20, maxMs = 600_000) {
    const script = fileURLToPath(new URL('../probe/main.js', import.meta.url));
    let buf = '';
    this.done = run(process.execPath, [script, url, String(intervalMs), String(maxMs)], {
      netns,
      signal: this.abort.signal,
      onStdout: (chunk) => {
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) {
          const [s, t] = l.split(' ');
          if (t) this.samples.push({ ok: s === 'ok', t: Number(t) });
        }
      },
    }).catch(() => undefined); // stopped by us: the kill is the expected end
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  /** Longest gap between consecutive successful answers within [from, to]. */
  longestGap(from: number, to: number): number {
    const oks = this.samples.filter((s) => s.ok && s.t >= from && s.t <= to).map((s) => s.t);
    let gap = 0;
    for (let i = 1; i < oks.length; i++) gap = Math.max(gap, oks[i]! - oks[i - 1]!);
    return gap;
  }

  async waitForAnswer(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    const since = Date.now();
    while (Date.now() < end) {
      if (this.samples.some((s) => s.ok && s.t >= since)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }
}
