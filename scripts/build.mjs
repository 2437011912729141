#!/usr/bin/env node
// Compiles src/ to dist/ (JavaScript, .d.ts, source maps) and copies the worker thread's
// boot module. `--if-stale` builds only when a file in src/ (or the build config) is newer
// than the last build: the test run, the demo and the benchmarks call it so they never run a
// stale dist/.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { buildUi } from './build-ui.mjs';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
const stamp = join(dist, '.build-stamp');

const newest = (dir) => {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
};

if (process.argv.includes('--if-stale') && existsSync(stamp)) {
  const inputs = Math.max(
    newest(join(root, 'src')),
    newest(join(root, 'ui')),
    statSync(join(root, 'tsconfig.build.json')).mtimeMs,
    statSync(join(root, 'tsconfig.json')).mtimeMs,
  );
  if (inputs < statSync(stamp).mtimeMs) process.exit(0);
}

const started = Date.now();
// Built beside dist/ and swapped in with two renames: a CLI started meanwhile (another test run,
// a demo) never finds dist/ missing or half written, and no file of a deleted source survives.
const next = join(root, `dist.build-${process.pid}`);
rmSync(next, { recursive: true, force: true });
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const r = spawnSync(
  process.execPath,
  [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', next],
  { stdio: 'inherit' },
);
if (r.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  console.error('eddy build: tsc failed');
  process.exit(r.status ?? 1);
}
copyFileSync(join(root, 'src/runtime/worker-boot.mjs'), join(next, 'runtime/worker-boot.mjs'));
// The web dashboard (ui/) the job's REST server serves from dist/ui/.
try {
  await buildUi(join(next, 'ui'));
} catch (e) {
  rmSync(next, { recursive: true, force: true });
  console.error(`eddy build: the dashboard (ui/) failed to build: ${e.message}`);
  process.exit(1);
}
// Dated when the compile started: a source saved during it counts as newer next time.
writeFileSync(join(next, '.build-stamp'), `${new Date(started).toISOString()}\n`);
utimesSync(join(next, '.build-stamp'), started / 1000, started / 1000);
const old = join(root, `dist.old-${process.pid}`);
try {
  renameSync(dist, old);
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
}
try {
  renameSync(next, dist);
} catch (e) {
  // Another build swapped its dist/ in first: same sources, keep it.
  if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
}
rmSync(old, { recursive: true, force: true });
rmSync(next, { recursive: true, force: true });
