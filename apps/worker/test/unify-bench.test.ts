/**
 * The unify benchmark, run only when asked (it takes a minute or two):
 *   FERRY_BENCH=1 npx vitest run apps/worker/test/unify-bench
 * FERRY_BENCH_TOOLS=ferry-dedupe,rdfind limits the tools.
 */
import { describe, expect, it } from 'vitest';
import { benchUnify, formatBench, type BenchTool } from '../src/unify/bench.js';

describe.skipIf(!process.env.FERRY_BENCH)('unify benchmark', () => {
  it('runs every tool on the same tree and prints the table', { timeout: 600_000 }, async () => {
    const tools = process.env.FERRY_BENCH_TOOLS?.split(',') as BenchTool[] | undefined;
    const r = await benchUnify({ log: (l) => console.log(l), ...(tools ? { tools } : {}) });
    console.log(formatBench(r));
    expect(r.rows.every((x) => x.ok)).toBe(true);
  });
});
