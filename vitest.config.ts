import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Test files run in parallel, but the machine has 2 cores (and each Redis test file
    // runs its own redis-server processes), so cap the worker count.
    fileParallelism: true,
    maxWorkers: 2,
    // The JSON report lets .ci/run print a plain 'N passed, N failed' line at the end.
    reporters: ['default', ['json', { outputFile: 'test-artifacts/vitest.json' }]],
  },
});
