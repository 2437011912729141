#!/usr/bin/env node
// eddy's CLI in this repository: runs the compiled eddy in dist/ (`npm run build`; `npm ci`
// and the test run build it), loading the TypeScript loader only for a .ts job. With
// EDDY_DEV=1 it runs the TypeScript sources in src/ instead, through tsx (slower to start; for
// working on eddy without rebuilding). The published package's `eddy` is dist/cli/main.js.
import { existsSync } from 'node:fs';

if (process.env.EDDY_DEV === '1') {
  const { registerSourceMode } = await import('../src/runtime/source-mode.mjs');
  await registerSourceMode();
  await import('../src/cli/main.ts');
} else {
  const main = new URL('../dist/cli/main.js', import.meta.url);
  if (!existsSync(main)) {
    process.stderr.write(
      'eddy: not built yet: run `npm run build` (or set EDDY_DEV=1 to run the sources)\n',
    );
    process.exit(1);
  }
  await import(main.href);
}
