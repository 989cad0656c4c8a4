import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Test tiers, each a vitest project (`vitest run --project <name>`):
 * - unit:  pure code and fixtures in temp dirs; seconds; no root, no services.
 * - redis: a real redis-server the tests start themselves (on PATH); no root. Includes the fast
 *          workflow tier (test/fast): real scheduler and workers on fake hosts, named as such.
 * - host:  root: LXC containers, sshd, rsync, namespaces, fanotify on this machine.
 * - lab:   end to end in the lab (hosts as namespaces, workers, scheduler); root.
 * - chaos: the fault-injection suite in the lab; root.
 * `npm run test:fast` runs unit + redis; `npm test` runs every tier (what CI runs), one tier after
 * another (groupOrder) and one file at a time: the root tiers share one machine.
 */
// test/fast: whole workflows through the real scheduler and host workers on fake hosts (test/support/fake).
const REDIS = ['apps/scheduler/test/**/*.test.ts', 'apps/dashboard/test/server.test.ts', 'apps/worker/test/container-lock.test.ts', 'apps/worker/test/peer-watch.test.ts', 'apps/worker/test/predecessor.test.ts', 'test/fast/**/*.test.ts'];
const UNIT = ['packages/**/test/**/*.test.ts', 'apps/dashboard/test/listen.test.ts', 'apps/dashboard/test/view.test.ts', 'apps/worker/test/units.test.ts', 'apps/worker/test/rootfs-beneath.test.ts', 'apps/worker/test/trust-config.test.ts', 'test/deploy/**/*.test.ts'];

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of the workspace packages.
    alias: {
      '@ferry/core': src('./packages/core/src/index.ts'),
      '@ferry/infra': src('./packages/infra/src/index.ts'),
      '@ferry/worker/sim': src('./apps/worker/src/sim/index.ts'),
      '@ferry/worker': src('./apps/worker/src/index.ts'),
      '@ferry/scheduler': src('./apps/scheduler/src/index.ts'),
      '@ferry/cli': src('./apps/cli/src/index.ts'),
      '@ferry/dashboard': src('./apps/dashboard/src/index.ts'),
      '@ferry/lab': src('./apps/lab/src/index.ts'),
    },
  },
  test: {
    fileParallelism: true,
    // vitest's default (CPUs - 1) is one worker on a 2-core machine; the fast tiers mostly wait (Redis, timers).
    maxWorkers: 3,
    testTimeout: 180_000,
    hookTimeout: 240_000,
    reporters: ['default'],
    projects: [
      // These two share nothing between files (each redis file starts its own redis-server, each
      // test a fresh prefix): their files run side by side, and a worker keeps the modules it
      // imported from one file to the next (isolate: false; importing the sources anew per file
      // was most of the tier's time).
      { extends: true, test: { name: 'unit', sequence: { groupOrder: 0 }, include: UNIT, isolate: false } },
      { extends: true, test: { name: 'redis', sequence: { groupOrder: 1 }, include: REDIS, isolate: false } },
      // The root tiers share one machine's namespaces, bridges and LXC: one file at a time.
      { extends: true, test: { name: 'host', sequence: { groupOrder: 2 }, include: ['apps/**/test/**/*.test.ts'], exclude: [...UNIT, ...REDIS], fileParallelism: false } },
      { extends: true, test: { name: 'lab', sequence: { groupOrder: 3 }, include: ['test/e2e/**/*.test.ts', 'test/lab/**/*.test.ts'], fileParallelism: false } },
      { extends: true, test: { name: 'chaos', sequence: { groupOrder: 4 }, include: ['test/chaos/**/*.test.ts'], fileParallelism: false } },
    ],
  },
});
