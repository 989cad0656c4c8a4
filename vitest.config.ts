import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of the workspace packages.
    alias: {
      '@ferry/core': src('./packages/core/src/index.ts'),
      '@ferry/infra': src('./packages/infra/src/index.ts'),
      '@ferry/worker': src('./apps/worker/src/index.ts'),
      '@ferry/scheduler': src('./apps/scheduler/src/index.ts'),
    },
  },
  test: {
    include: ['packages/**/test/**/*.test.ts', 'apps/**/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Lab tests share one machine's namespaces, bridges and LXC: run files one at a time.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 240_000,
    reporters: ['default'],
  },
});
