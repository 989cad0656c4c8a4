/** A distribution's size and percentiles (nearest rank), ms. */
export interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function dist(xs: number[]): Dist {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN);
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1]! : NaN };
}

/** Named samples, gathered as migrations end. */
export class Samples<K extends string> {
  private readonly xs = new Map<K, number[]>();

  add(k: K, x: number | undefined): void {
    if (x === undefined || !Number.isFinite(x)) return;
    let a = this.xs.get(k);
    if (!a) this.xs.set(k, (a = []));
    a.push(x);
  }

  dist(k: K): Dist {
    return dist(this.xs.get(k) ?? []);
  }
}

/** Rows of cells as an aligned text table (first column left, the others right). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
