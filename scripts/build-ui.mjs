#!/usr/bin/env node
// Bundles the web dashboard (ui/src, Preact + uPlot + dagre) with esbuild into one app.js and
// one app.css beside ui/index.html: the job's REST server serves them from dist/ui/ and nothing
// is fetched from a CDN at run time. Called by build.mjs (into the dist/ it is about to swap
// in); run alone it rebuilds dist/ui/ in place.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;

/** The libraries bundled into app.js: their licenses ship beside it. */
const BUNDLED = ['preact', 'uplot', '@dagrejs/dagre', '@dagrejs/graphlib'];

const licenses = () =>
  BUNDLED.map((name) => {
    const dir = join(root, 'node_modules', name);
    const { version, license } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const text = readFileSync(join(dir, 'LICENSE'), 'utf8').trim();
    return `${name} ${version} (${license})\n\n${text}\n`;
  }).join(`\n${'-'.repeat(72)}\n\n`);

/** Builds the dashboard into `outDir` (created, emptied first). */
export const buildUi = async (outDir) => {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(root, 'ui/src/main.tsx') },
    bundle: true,
    outdir: outDir,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(join(root, 'ui/index.html'), join(outDir, 'index.html'));
  writeFileSync(join(outDir, 'licenses.txt'), licenses());
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await buildUi(join(root, 'dist/ui'));
}
