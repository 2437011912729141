/**
 * The package's public surface (src/index.ts, docs/ARCHITECTURE.md "Public surface"): every
 * export is named explicitly and has a doc comment where it is declared, and internals stay
 * out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const indexFile = join(root, 'src', 'index.ts');
const index = readFileSync(indexFile, 'utf8');

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const tsPath = (from: string, spec: string) =>
  normalize(join(dirname(from), spec.replace(/\.js$/, '.ts')));

/** (name, module) of every `export { … } from '…'` in a file. */
const reexports = (file: string, text: string) =>
  [...text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'([^']+)'/g)].flatMap((m) =>
    (m[1] ?? '')
      .split(',')
      .map((n) => n.replace(/^\s*type\s+/, '').trim())
      .filter((n) => n.length > 0)
      .map((n) => ({ name: n.split(/\s+as\s+/)[0] as string, from: tsPath(file, m[2] as string) })),
  );

/** Whether `name`'s declaration (followed through re-exports) has a doc comment above it. */
const documented = (name: string, file: string, depth = 0): boolean | 'not found' => {
  if (depth > 5 || !existsSync(file)) return 'not found';
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const decl = new RegExp(
    `^export\\s+(?:declare\\s+)?(?:abstract\\s+)?(?:class|interface|type|const|function|enum)\\s+${escapeRe(name)}\\b`,
  );
  const at = lines.findIndex((l) => decl.test(l));
  if (at >= 0) {
    let j = at - 1;
    while (j >= 0 && (lines[j] ?? '').trim() === '') j--;
    return (lines[j] ?? '').trim().endsWith('*/');
  }
  const via = reexports(file, text).find((r) => r.name === name);
  if (via) return documented(name, via.from, depth + 1);
  // `import type { X } from '…'; export type { X };`
  const imported = new RegExp(
    `import\\s+(?:type\\s+)?\\{[^}]*\\b${escapeRe(name)}\\b[^}]*\\}\\s+from\\s+'([^']+)'`,
  ).exec(text);
  if (imported?.[1]) return documented(name, tsPath(file, imported[1]), depth + 1);
  return 'not found';
};

describe('public API', () => {
  it('names every export explicitly (no export *)', () => {
    expect(index).not.toMatch(/export\s+\*/);
  });

  it('every export has a doc comment', () => {
    const undocumented = reexports(indexFile, index)
      .map(({ name, from }) => ({ name, doc: documented(name, from) }))
      .filter((x) => x.doc !== true)
      .map((x) => `${x.name} (${x.doc === false ? 'no doc comment' : 'declaration not found'})`);
    expect(undocumented).toEqual([]);
  });

  it('keeps internals out', () => {
    const exported = new Set(reexports(indexFile, index).map((r) => r.name));
    for (const internal of [
      'StreamElement',
      'RecordBatch',
      'CheckpointBarrier',
      'JobMaster',
      'buildGraph',
      'runGraphInThread',
      'HeapKeyedStateBackend',
      'HeapOperatorStateStore',
      'normalizeKey',
      'NormalizedKey',
      'WindowOperator',
      'serializeError',
    ]) {
      expect(exported.has(internal), internal).toBe(false);
    }
  });

  it('exports the join builders', () => {
    for (const name of [
      'JoinedStreams',
      'JoinWhere',
      'JoinEqualTo',
      'WindowedJoin',
      'CoGroupedStreams',
      'CoGroupWhere',
      'CoGroupEqualTo',
      'WindowedCoGroup',
      'IntervalJoin',
      'IntervalJoined',
      'KeyedJoin',
    ]) {
      expect(api, name).toHaveProperty(name);
    }
    expect(index).toMatch(/type JoinFunction,/);
    expect(index).toMatch(/type CoGroupFunction,/);
    expect(index).toMatch(/type ProcessJoinFunction,/);
    expect(index).toMatch(/type ProcessJoinContext,/);
  });

  it('exports what the README and the examples use', () => {
    for (const name of [
      'defineJob',
      'FileSource',
      'FileSink',
      'GeneratorSource',
      'ValueStateDescriptor',
      'WatermarkStrategy',
      'EddyError',
      'FatalError',
      'assignToKeyGroup',
      'computeKeyGroupRange',
      'operatorIndexForKeyGroup',
      'defaultMaxParallelism',
    ]) {
      expect(api, name).toHaveProperty(name);
    }
  });

  it('exports the Nexmark source and generator', () => {
    for (const name of ['NexmarkSource', 'nexmarkEvent']) expect(api, name).toHaveProperty(name);
  });
});
