import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// In-process tests use the sources: `import 'eddy'` means src/index.ts (what package.json's
// `eddy-source` condition means to the type check and to worker threads run from sources).
const alias = [
  { find: /^eddy$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
];

// Clusters of worker processes (a master, workers, kill -9, heartbeats): alone on the machine.
const clusterTests = ['test/e2e/cluster*.test.ts'];

const timeouts = { testTimeout: 60_000, hookTimeout: 60_000 };

export default defineConfig({
  resolve: { alias },
  test: {
    globalSetup: ['test/global-setup.ts'],
    // Three groups, one after the other. The in-process tests and then the end-to-end tests run
    // two files at a time: most of an end-to-end test's time is spent waiting (processes
    // starting, throttled sources, checkpoints to complete), and the tests wait on conditions,
    // never on sleeps, so they do not depend on the speed they get. The cluster tests run last,
    // one file at a time: each starts a master and several worker processes, and their
    // heartbeat timeouts are the one place where a starved process changes what is tested.
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/*.test.ts', 'test/servers/**/*.test.ts', 'bench/**/*.test.ts'],
          typecheck: { enabled: true, include: ['src/**/*.test-d.ts'] },
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
          ...timeouts,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: clusterTests,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          ...timeouts,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e-cluster',
          include: clusterTests,
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
          ...timeouts,
        },
      },
    ],
  },
});
