/**
 * fast-check arbitraries and temp-directory helpers shared by the checkpoint tests.
 * Test-only (imports fast-check, a dev dependency); nothing outside tests imports it.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { KeyGroupSnapshot, NormalizedKey, StateKind } from '../state/types.js';

/** -0 comes back as 0 from msgpack (documented in block-codec.ts); keep it out of equality tests. */
const double = fc.double().map((d) => (Object.is(d, -0) ? 0 : d));

/** Keys as the backends hold them (normalized): strings, numbers, booleans, bigints. */
export const normalizedKey: fc.Arbitrary<NormalizedKey> = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer(),
  double,
  fc.boolean(),
  fc.bigInt(),
);

const leaf = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer(),
  double,
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
);

/** Nested user values: arrays, plain objects, Maps (keys of any leaf type), Sets. */
export const stateValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 4, noNullPrototype: true }),
    fc.array(fc.tuple(leaf, tie('v')), { maxLength: 3 }).map((e) => new Map(e)),
    fc
      .array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 3 })
      .map((e) => new Set(e)),
  ),
})).v;

const kind = fc.option(
  fc.constantFrom<StateKind>('value', 'list', 'map', 'reducing', 'aggregating'),
  {
    nil: undefined,
  },
);

const stateOf = (name: string) =>
  fc
    .record({
      kind,
      entries: fc.array(fc.tuple(normalizedKey, stateValue), { minLength: 1, maxLength: 5 }),
    })
    .map(({ kind, entries }) => (kind === undefined ? { name, entries } : { name, kind, entries }));

/** One key group's snapshot with 1..3 named states. */
export const keyGroupSnapshot = (keyGroup: number): fc.Arbitrary<KeyGroupSnapshot> =>
  fc
    .uniqueArray(fc.constantFrom('count', 'sum', 'window', 'x', '\u00e9t\u00e9', ''), {
      minLength: 1,
      maxLength: 3,
    })
    .chain((names) => fc.tuple(...names.map(stateOf)))
    .map((states) => ({ keyGroup, states }));

/** A subtask's key-group range inside `[0, maxParallelism)` and snapshots of some of its groups. */
export const keyedSubtaskState = fc
  .integer({ min: 1, max: 48 })
  .chain((maxParallelism) =>
    fc
      .tuple(fc.nat(maxParallelism - 1), fc.nat(maxParallelism - 1))
      .map(([a, b]) => ({ maxParallelism, start: Math.min(a, b), end: Math.max(a, b) })),
  )
  .chain(({ maxParallelism, start, end }) =>
    fc
      .subarray(
        Array.from({ length: end - start + 1 }, (_, i) => start + i),
        { minLength: 0 },
      )
      .chain((groups) => fc.tuple(...groups.map(keyGroupSnapshot)))
      .map((snapshots) => ({ maxParallelism, range: { start, end }, snapshots })),
  );

/** A fresh temp directory; remove it with {@link removeTempDir}. */
export const makeTempDir = (prefix = 'eddy-chk-'): Promise<string> =>
  mkdtemp(join(tmpdir(), prefix));

export const removeTempDir = (dir: string): Promise<void> =>
  rm(dir, { recursive: true, force: true });

/** Flips every bit of the byte at `offset` of a buffer copy. */
export const flipByte = (bytes: Uint8Array, offset: number): Buffer => {
  const copy = Buffer.from(bytes);
  copy[offset] = (copy[offset] ?? 0) ^ 0xff;
  return copy;
};
