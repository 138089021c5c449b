import { defineConfig } from 'vitest/config';

/** Runs the branch-local repros of known defects (see each file's header). */
export default defineConfig({
  test: {
    include: ['test/cluster/defects/*.repro.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
