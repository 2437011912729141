/**
 * Enforces the layer order of docs/ARCHITECTURE.md ("Layers"): a module under src/<layer> may
 * import only from its own layer and the layers before it. `src/index.ts`, the package's
 * public face, sits above every layer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const LAYERS = [
  'core',
  'keygroups',
  'state',
  'checkpoint',
  'runtime',
  'connectors',
  'api',
  'control',
  'cluster',
  'server',
  'cli',
] as const;

/**
 * Files allowed to import upward, with the reason. Tests are not part of the package: a test of
 * a lower layer may build its jobs through the API or use a higher layer's test helpers
 * (e.g. runtime tests that run a job built with `StreamExecutionEnvironment`). Production
 * code has no exception.
 */
const isExempt = (file: string): boolean => /\.(test|test-d)\.ts$/.test(file);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

const walk = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );

const layerOf = (file: string): number => {
  const top = relative(src, file).split(/[\\/]/)[0] ?? '';
  return LAYERS.indexOf(top as (typeof LAYERS)[number]);
};

/** Relative specifiers of static imports, re-exports, `import type` and `import('…')`. */
const importsOf = (text: string): string[] =>
  [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)].map(
    (m) => m[1] as string,
  );

const violations = (): string[] => {
  const found: string[] = [];
  for (const file of walk(src)) {
    if (!/\.(ts|mts|mjs|js)$/.test(file)) continue;
    if (isExempt(file)) continue;
    const from = layerOf(file);
    if (from < 0) continue;
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = layerOf(normalize(join(dirname(file), spec)));
      if (to > from) {
        found.push(`${relative(root, file)} (${LAYERS[from]}) imports ${spec} (${LAYERS[to]})`);
      }
    }
  }
  return found;
};

describe('layers', () => {
  it('every src folder is a known layer', () => {
    const folders = readdirSync(src, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(folders).toEqual([...LAYERS].sort());
  });

  it('imports point only down the layer order (tests excepted)', () => {
    expect(violations()).toEqual([]);
  });

  it('the scan sees imports (a regex that matched nothing would pass vacuously)', () => {
    expect(
      importsOf("import type { A } from '../state/types.js';\nexport * from './x.js';"),
    ).toEqual(['../state/types.js', './x.js']);
    expect(importsOf("const m = await import('../api/job.js');")).toEqual(['../api/job.js']);
  });
});
