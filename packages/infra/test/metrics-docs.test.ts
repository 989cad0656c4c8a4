import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { metricsRegistry } from '../src/metrics/registry.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string) => readFile(`${ROOT}${p}`, 'utf8');
/** A histogram's series are its name with _bucket, _sum and _count. */
const base = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

/** The README's Metrics table and the Grafana dashboard name only metrics ferry defines, and the table every one. */
describe('metric names in the docs', () => {
  it('match the definitions', async () => {
    const sources = await Promise.all(['apps/scheduler/src/metrics/operations.ts', 'apps/scheduler/src/metrics/fleet.ts', 'apps/worker/src/metrics.ts'].map(read));
    const defined = new Set(sources.flatMap((s) => [...s.matchAll(/name: '(ferry_[a-z0-9_]+)'/g)].map((m) => m[1]!)));
    const processMetrics = new Set(metricsRegistry().getMetricsAsArray().map((m) => m.name));
    expect(defined.size).toBeGreaterThan(15);

    const readme = await read('README.md');
    const section = readme.slice(readme.indexOf('\n## Metrics\n'), readme.indexOf('\n## ', readme.indexOf('\n## Metrics\n') + 1));
    const tabled = new Set([...section.matchAll(/^\| `(ferry_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
    expect([...tabled].sort()).toEqual([...defined].sort());

    const dashboard = await read('docs/grafana/ferry.json');
    JSON.parse(dashboard);
    const used = new Set([...dashboard.matchAll(/ferry_[a-z0-9_]+/g)].map((m) => base(m[0])));
    expect([...used].filter((n) => !defined.has(n) && !processMetrics.has(n))).toEqual([]);
    // Every metric ferry defines has a panel, but the scrape's own error count.
    expect([...defined].filter((n) => !used.has(n))).toEqual(['ferry_metrics_redis_errors_total']);
  });
});
