import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // In-process tests use the sources: `import 'eddy'` means src/index.ts (what package.json's
  // `eddy-source` condition means to the type check and to worker threads run from sources).
  resolve: {
    alias: [
      { find: /^eddy$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    globalSetup: ['test/global-setup.ts'],
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    typecheck: { enabled: true, include: ['src/**/*.test-d.ts'] },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
