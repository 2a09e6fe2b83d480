import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // After each test file: every STAC document it made cogd write is checked against the schemas.
    setupFiles: ['test/support/stac-everywhere.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time (vitest's default is one less than the CPUs: one on a 2-core CI
    // machine). Most end-to-end time is waiting — on daemons, Slurm's polls, gates — not CPU; every
    // file has its own homes, buckets, HTCondor simulator and ports.
    maxWorkers: 2,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
