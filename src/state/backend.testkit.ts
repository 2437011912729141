/**
 * The keyed state backends the contract suites run against (issue 16: both backends pass the
 * same suites), and what those suites share: cleanup of the backends a test created, and
 * order-insensitive views of snapshots for the few places where the contract leaves order
 * unspecified.
 *
 * What order the contract fixes and what it leaves open: key groups ascending and states
 * sorted by name, in every backend; entries within a key group's state, and the entries of a
 * map-state value, in an order of the backend's choosing (the heap keeps insertion order, the
 * disk backend the byte order of the serialised key). List elements keep their order.
 *
 * Cleanup: every backend created through {@link TestBackend.create} is disposed after each test
 * (and its directory, for the disk backend, removed), whatever the test did; a property test
 * that creates backends per run calls {@link disposeBackends} at the end of each run so that
 * no more than one run's backends are open at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import type { KeyedStateBackend, KeyedStateBackendOptions } from './backend.js';
import { DiskKeyedStateBackend } from './disk/index.js';
import { HeapKeyedStateBackend } from './heap-keyed-backend.js';
import type { KeyGroupSnapshot, NormalizedKey } from './types.js';

export type BackendName = 'heap' | 'disk';

/** One backend under test: `create` makes a fresh, empty one (its own directory on disk). */
export interface TestBackend {
  readonly name: BackendName;
  create(options: KeyedStateBackendOptions): KeyedStateBackend;
}

/** Backends created and not yet cleaned up, with their directories (disk). */
const live: Array<{ backend: KeyedStateBackend; dir?: string }> = [];
let root: string | undefined;

/** A fresh directory for one disk backend, under one per-file root removed after the file. */
const freshDir = (): string => {
  root ??= mkdtempSync(join(tmpdir(), 'eddy-backend-test-'));
  return mkdtempSync(join(root, 'b-'));
};

const track = <B extends KeyedStateBackend>(backend: B, dir?: string): B => {
  live.push(dir === undefined ? { backend } : { backend, dir });
  return backend;
};

/**
 * Disposes every backend created since the last call (a backend the test disposed already is
 * disposed again: dispose errors are ignored here) and removes their directories.
 */
export const disposeBackends = (): void => {
  for (const { backend, dir } of live.splice(0)) {
    try {
      backend.dispose();
    } catch {
      // disposed by the test already
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
};

afterEach(disposeBackends);
afterAll(() => {
  disposeBackends();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

export const HEAP: TestBackend = {
  name: 'heap',
  create: (options) => track(new HeapKeyedStateBackend(options)),
};

/**
 * Pending writes the disk backend holds in memory before writing them to its store: small, so
 * that the suites' few writes go through the store (flushed mid-test, read back from it) and
 * not only through the write-back overlay.
 */
export const DISK_WRITE_BATCH = 3;

/**
 * The disk store's tunables in the suites: tiny, so that a few writes already go through
 * every layer of the store (memtables frozen by views, run files, merges of runs, deletions
 * hiding older runs, Bloom filters with false positives, blocks of a few entries).
 */
export const DISK_STORE_TUNING = {
  memtableEntries: 4,
  tierBase: 2,
  syncMergeEntries: 6,
  maxMemtables: 2,
  fanIn: 2,
  blockBytes: 64,
  bitsPerKey: 4,
} as const;

export const DISK: TestBackend = {
  name: 'disk',
  create: (options) => {
    const dir = freshDir();
    return track(
      new DiskKeyedStateBackend({
        ...options,
        dir,
        writeBatch: DISK_WRITE_BATCH,
        storeTuning: DISK_STORE_TUNING,
      }),
      dir,
    );
  },
};

/** Every keyed state backend: the contract suites run `describe.each(BACKENDS)`. */
export const BACKENDS: ReadonlyArray<TestBackend> = [HEAP, DISK];

/** A total order on normalised keys (type first, then value), for order-insensitive checks. */
export const compareKeys = (a: NormalizedKey, b: NormalizedKey): number => {
  const ta = typeof a;
  const tb = typeof b;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
};

const byKey = (a: readonly [unknown, unknown], b: readonly [unknown, unknown]): number =>
  compareKeys(a[0] as NormalizedKey, b[0] as NormalizedKey);

/** A map-state value in snapshot form ([userKey, value] pairs), its pairs sorted by key. */
export const sortedMapValue = (value: unknown): unknown =>
  Array.isArray(value) ? [...(value as Array<readonly [unknown, unknown]>)].sort(byKey) : value;

/** Entries sorted by key; for map state (`map`), each value's pairs sorted by user key too. */
export const sortedEntries = (
  entries: ReadonlyArray<readonly [NormalizedKey, unknown]>,
  map = false,
): Array<readonly [NormalizedKey, unknown]> =>
  [...entries]
    .map(([k, v]): readonly [NormalizedKey, unknown] => [k, map ? sortedMapValue(v) : v])
    .sort(byKey);

/**
 * A key group's snapshot with the order the contract leaves open made canonical: entries sorted
 * by key, map values' pairs by user key. Key-group and state order are kept as they are: those
 * the contract fixes, and the comparison checks them. Other fields are kept.
 */
export const canonicalSnapshot = <S extends KeyGroupSnapshot>(snap: S): S => ({
  ...snap,
  states: snap.states.map((s) => ({
    ...s,
    entries: sortedEntries(s.entries, s.kind === 'map'),
  })),
});

/** {@link canonicalSnapshot} of each snapshot, in the order given. */
export const canonicalSnapshots = <S extends KeyGroupSnapshot>(snaps: readonly S[]): S[] =>
  snaps.map(canonicalSnapshot);

/**
 * Runs of a fast-check property for `backend`: the heap keeps the suite's count; the disk
 * backend, whose runs each open and delete stores (about 2 ms a store), `diskRuns` (default a
 * fifth of the heap's, at least 20), so the unit project stays fast.
 */
export const propertyRuns = (
  backend: TestBackend,
  heapRuns: number,
  diskRuns = Math.max(20, Math.round(heapRuns / 5)),
): number => (backend.name === 'heap' ? heapRuns : diskRuns);
