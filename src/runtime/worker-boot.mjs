// Worker thread entry. Compiled eddy (dist/, the published package) imports the compiled
// entry directly: the TypeScript loader is registered later, and only if the job is a .ts
// module (see core/ts-loader.ts). Run from its TypeScript sources (tests, EDDY_DEV=1), eddy
// needs the loader for itself, and `import 'eddy'` in a job must mean the same sources (the
// `eddy-source` export condition) so that job and engine share one copy of every class.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('./worker-entry.ts', import.meta.url);
if (existsSync(fileURLToPath(source))) {
  const { registerSourceMode } = await import('./source-mode.mjs');
  await registerSourceMode();
  await import(source.href);
} else {
  await import('./worker-entry.js');
}
