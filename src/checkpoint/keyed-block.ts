/**
 * The bytes of one key group's keyed state: one self-contained msgpack block
 *
 *   [keyGroup, [[stateName, kind | null, [[key, value], ...]], ...]]
 *
 * A delta block of an incremental checkpoint has the same layout; a state that lost keys since
 * the previous block has a fourth element, the deleted keys:
 *
 *   [keyGroup, [[stateName, kind | null, [[key, value], ...], [deletedKey, ...]], ...]]
 *
 * Positional arrays rather than objects so the layout is fixed by this file, not by the
 * property order of a TypeScript interface. Pure; no I/O.
 *
 * Two ways in, one format out: a {@link KeyGroupSnapshot} (arrays), or {@link KeyGroupMaps},
 * the backend's own maps read in place, which skips building the snapshot's entry arrays (at
 * 10M keys those arrays and their garbage collection cost more than the encoding). Either way
 * the common values (numbers, strings, booleans, null, arrays of them) go through
 * {@link MsgpackWriter} and anything else through msgpackr, and the bytes are the same.
 */

import { EddyError } from '../core/errors.js';
import type { KeyGroupSnapshot, KeyListState, NormalizedKey, StateKind } from '../state/types.js';
import { MsgpackWriter, packBlock, unpackBlock } from './block-codec.js';
import { malformedBlockError } from './errors.js';

export type { KeyListState };

/**
 * One key group's states as a keyed backend holds them, to be encoded without copying them
 * first (the heap backend's snapshot view hands these out). Encodes to exactly the block of the
 * {@link KeyGroupSnapshot} the backend would give for the same key group.
 */
export interface KeyGroupMaps {
  readonly keyGroup: number;
  /** Non-empty states only, sorted by name (as in a snapshot). */
  readonly states: ReadonlyArray<{
    readonly name: string;
    /** The kind to record (as a snapshot's `kind`). */
    readonly kind: StateKind | undefined;
    /**
     * True when the values are `Map`s holding map state's entries (its live form): each is
     * written as the snapshot form, an array of [key, value] pairs. Otherwise values are
     * written as they are (a list's array is its snapshot form).
     */
    readonly mapValues: boolean;
    readonly entries: ReadonlyMap<NormalizedKey, unknown>;
    /**
     * For live maps read in place (key-level copy-on-write): the values to write instead of
     * `entries`' of keys written since the snapshot, in the same live form; undefined: the key
     * had no entry then, skip it. May grow while the state is written, between steps. `entries`
     * may meanwhile change values in place and gain keys (all in `saved`), never lose one.
     */
    readonly saved?: ReadonlyMap<NormalizedKey, unknown>;
    /** The number of entries to write (default `entries.size`): those not skipped. */
    readonly count?: number;
  }>;
}

type State = KeyGroupSnapshot['states'][number];

/**
 * What changed in one key group since the previous block of its chain: per state the entries
 * written (their values now) and the keys deleted. Applied to the state before it
 * ({@link applyDelta}), it gives the key group's state when the checkpoint was taken.
 */
export interface KeyGroupDelta {
  readonly keyGroup: number;
  /** Sorted by name; a state with neither entries nor deletions may be left out. */
  readonly states: ReadonlyArray<{
    readonly name: string;
    readonly kind?: StateKind;
    readonly entries: ReadonlyArray<readonly [NormalizedKey, unknown]>;
    readonly deleted: readonly NormalizedKey[];
  }>;
}

/** A decoded block: a base block's states have no deletions. */
export interface DecodedBlock {
  readonly keyGroup: number;
  readonly states: ReadonlyArray<State & { readonly deleted?: readonly NormalizedKey[] }>;
}

/**
 * Appends the delta block of `delta` to `w`: states without entries or deletions are left
 * out, and a state's deleted keys are written only if there are any (a delta with no
 * deletions is byte for byte the base block of its entries).
 * @throws as {@link encodeKeyGroupBlock}; `w` then holds an unknown part of the block.
 */
export const writeKeyGroupDelta = (w: MsgpackWriter, delta: KeyGroupDelta): void => {
  const states = delta.states
    .filter((s) => s.entries.length > 0 || s.deleted.length > 0)
    .map((s) =>
      s.deleted.length === 0
        ? [s.name, s.kind ?? null, s.entries]
        : [s.name, s.kind ?? null, s.entries, s.deleted],
    );
  writeBlockValue(w, [delta.keyGroup, states], delta);
};

/**
 * Appends `block` (a block's positional arrays) to `w`: the fast writer where it can, msgpackr
 * for the rest. `of` names the key group and its states if a value cannot be encoded.
 */
const writeBlockValue = (
  w: MsgpackWriter,
  block: unknown[],
  of: { readonly keyGroup: number; readonly states: ReadonlyArray<{ readonly name: string }> },
): void => {
  const start = w.length;
  if (w.value(block)) return;
  w.truncate(start);
  try {
    w.raw(packBlock(block));
  } catch (e) {
    throw unencodable(of.keyGroup, of.states, e);
  }
};

/**
 * The state of a key group after `blocks` (a chain: its base block, then its deltas in order)
 * were applied one after the other: per state, deleted keys are removed, written entries set
 * (a key written again keeps its place, a new key goes last). States are sorted by name; a
 * state left with no entries is dropped.
 */
export const applyChain = (keyGroup: number, blocks: readonly DecodedBlock[]): KeyGroupSnapshot => {
  if (blocks.length === 1 && blocks[0]!.states.every((s) => s.deleted === undefined)) {
    return blocks[0] as KeyGroupSnapshot;
  }
  const merged = new Map<string, { kind?: StateKind; entries: Map<NormalizedKey, unknown> }>();
  for (const block of blocks) {
    for (const s of block.states) {
      let state = merged.get(s.name);
      if (state === undefined) {
        state = { entries: new Map() };
        merged.set(s.name, state);
      }
      if (s.kind !== undefined) state.kind = s.kind;
      if (s.deleted !== undefined) for (const k of s.deleted) state.entries.delete(k);
      for (const [k, v] of s.entries) state.entries.set(k, v);
    }
  }
  const states: State[] = [];
  for (const name of [...merged.keys()].sort()) {
    const { kind, entries } = merged.get(name)!;
    if (entries.size === 0) continue;
    const list = [...entries];
    states.push(kind === undefined ? { name, entries: list } : { name, kind, entries: list });
  }
  return { keyGroup, states };
};

const KINDS: ReadonlySet<string> = new Set<StateKind>([
  'value',
  'list',
  'map',
  'reducing',
  'aggregating',
]);

/** The writer of {@link encodeKeyGroupBlock}; reused, so its result is a view (see there). */
const shared = new MsgpackWriter(64 * 1024);

/**
 * Encodes a key group's snapshot as one block. Hazard: the result may be a view into a shared
 * encoder buffer; write or copy it before encoding the next block.
 * @throws EddyError `EDDY_STATE` when a value cannot be encoded (e.g. a symbol), naming the
 *   key group and state.
 */
export const encodeKeyGroupBlock = (snapshot: KeyGroupSnapshot): Uint8Array => {
  shared.reset();
  writeKeyGroupSnapshot(shared, snapshot);
  return shared.bytes();
};

/**
 * Appends the block of `snapshot` to `w` (the fast writer where it can, msgpackr otherwise).
 * @throws as {@link encodeKeyGroupBlock}; `w` then holds an unknown part of the block.
 */
export const writeKeyGroupSnapshot = (w: MsgpackWriter, snapshot: KeyGroupSnapshot): void => {
  const states = snapshot.states.map((s) => [s.name, s.kind ?? null, s.entries]);
  writeBlockValue(w, [snapshot.keyGroup, states], snapshot);
};

/** States with more entries than this are encoded in slices; smaller ones in one go. */
export const SLICED_STATE_ENTRIES = 16 * 1024;
/** Entries written between two pauses (yields) of a sliced state. */
export const ENTRIES_PER_STEP = 1024;

/**
 * Appends the block of `maps` to `w` if every key and value is one the fast writer covers, and
 * returns true; otherwise leaves `w` as it was and returns false: the caller then encodes the
 * key group's snapshot instead ({@link writeKeyGroupSnapshot}).
 *
 * A generator, run to its end by the caller: inside a state of more than
 * {@link SLICED_STATE_ENTRIES} entries it pauses (yields) every few hundred microseconds of
 * work, so that the caller can let the event loop run inside one large key group. Its return
 * value is the outcome above. The maps must not change between steps (a snapshot view's maps
 * never do). Smaller states are written in one go with `Map.forEach` (no [key, value] array
 * per entry: about twice as fast as resumable iteration); larger ones entry by entry from an
 * iterator that survives a pause.
 */
export function* writeKeyGroupMapsInSlices(
  w: MsgpackWriter,
  maps: KeyGroupMaps,
): Generator<void, boolean, void> {
  const start = w.length;
  w.arrayHeader(2);
  w.number(maps.keyGroup);
  w.arrayHeader(maps.states.length);
  for (const state of maps.states) {
    w.arrayHeader(3);
    w.string(state.name);
    if (state.kind === undefined) w.nil();
    else w.string(state.kind);
    const { entries, saved } = state;
    const count = state.count ?? entries.size;
    w.arrayHeader(count);
    let ok: boolean;
    if (entries.size <= SLICED_STATE_ENTRIES && (saved === undefined || saved.size === 0)) {
      // Written in one go: `saved` cannot change meanwhile, and is empty (count === size).
      ok = state.mapValues ? writeMapEntries(w, entries) : writeEntries(w, entries);
    } else if (saved === undefined) {
      const it = entries.entries();
      let step = writeSome(w, it, state.mapValues);
      while (step === MORE) {
        yield;
        step = writeSome(w, it, state.mapValues);
      }
      ok = step === DONE;
    } else {
      const cursor = { it: entries.entries(), written: 0 };
      let step = writeSomeSaved(w, cursor, saved, state.mapValues);
      while (step === MORE) {
        yield;
        step = writeSomeSaved(w, cursor, saved, state.mapValues);
      }
      ok = step === DONE;
      if (ok && cursor.written !== count) {
        // The header is written: a miscount would make a block that decodes wrongly.
        throw new EddyError(
          'EDDY_STATE',
          `key group ${maps.keyGroup} state '${state.name}': wrote ${cursor.written} entries ` +
            `of ${count} (the state changed under its snapshot)`,
          { domain: 'internal' },
        );
      }
    }
    if (!ok) {
      w.truncate(start);
      return false;
    }
  }
  return true;
}

/**
 * Appends the base block of `states` (non-empty, sorted by name) to `w`, as
 * {@link writeKeyGroupMapsInSlices} does (same generator protocol: yields every
 * {@link ENTRIES_PER_STEP} entries; returns false, with `w` as it was, if a value is not one the
 * fast writer covers). The values looked up may change between steps only as `valueAt` allows.
 * @throws EddyError `EDDY_STATE` (internal) if a state wrote other than `count` entries.
 */
export function* writeKeyListsInSlices(
  w: MsgpackWriter,
  keyGroup: number,
  states: readonly KeyListState[],
): Generator<void, boolean, void> {
  const start = w.length;
  w.arrayHeader(2);
  w.number(keyGroup);
  w.arrayHeader(states.length);
  for (const state of states) {
    w.arrayHeader(3);
    w.string(state.name);
    if (state.kind === undefined) w.nil();
    else w.string(state.kind);
    w.arrayHeader(state.count);
    const { keys, valueAt, mapValues } = state;
    let written = 0;
    let n = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = valueAt(key);
      if (value === undefined) continue;
      if (!writeEntry(w, key, value, mapValues)) {
        w.truncate(start);
        return false;
      }
      written++;
      if (++n === ENTRIES_PER_STEP) {
        n = 0;
        yield;
      }
    }
    for (const [key, value] of state.tail) {
      if (!writeEntry(w, key, value, mapValues)) {
        w.truncate(start);
        return false;
      }
      written++;
    }
    if (written !== state.count) {
      throw new EddyError(
        'EDDY_STATE',
        `key group ${keyGroup} state '${state.name}': wrote ${written} entries of ` +
          `${state.count} (the state changed under its view)`,
        { domain: 'internal' },
      );
    }
  }
  return true;
}

const writeEntry = (w: MsgpackWriter, key: unknown, value: unknown, mapValues: boolean) => {
  w.arrayHeader(2);
  return (
    w.value(key) && (mapValues && value instanceof Map ? writeMapValue(w, value) : w.value(value))
  );
};

const DONE = 0;
const MORE = 1;
const FAILED = 2;
type Step = typeof DONE | typeof MORE | typeof FAILED;

/**
 * Writes up to {@link ENTRIES_PER_STEP} entries from `it`. Leaving the for..of early keeps the
 * iterator usable: Map iterators have no `return()`, so the next call goes on where this one
 * stopped.
 */
const writeSome = (
  w: MsgpackWriter,
  it: Iterator<[NormalizedKey, unknown]> & Iterable<[NormalizedKey, unknown]>,
  mapValues: boolean,
): Step => {
  let n = 0;
  for (const [key, value] of it) {
    w.arrayHeader(2);
    if (!(w.value(key) && (mapValues ? writeMapValue(w, value) : w.value(value)))) return FAILED;
    if (++n === ENTRIES_PER_STEP) return MORE;
  }
  return DONE;
};

/**
 * {@link writeSome} for a live map with saved values (see {@link KeyGroupMaps}): a key in
 * `saved` is written with its saved value, or skipped if that is undefined. Counts what it
 * writes in `cursor.written`.
 */
const writeSomeSaved = (
  w: MsgpackWriter,
  cursor: { it: MapIterator<[NormalizedKey, unknown]>; written: number },
  saved: ReadonlyMap<NormalizedKey, unknown>,
  mapValues: boolean,
): Step => {
  // `saved` only grows between steps (the job runs then), so one look at its size per step.
  const check = saved.size !== 0;
  let n = 0;
  let step: Step = DONE;
  for (const [key, live] of cursor.it) {
    let value = live;
    if (check && saved.has(key)) {
      value = saved.get(key);
      if (value === undefined) continue;
    }
    w.arrayHeader(2);
    if (!(w.value(key) && (mapValues ? writeMapValue(w, value) : w.value(value)))) {
      step = FAILED;
      break;
    }
    if (++n === ENTRIES_PER_STEP) {
      step = MORE;
      break;
    }
  }
  cursor.written += n;
  return step;
};

// Map.forEach, not for..of: no [key, value] array per entry. It cannot stop early, so after the
// first value the writer gives up on, the rest of the entries are only skipped.
const writeEntries = (w: MsgpackWriter, entries: ReadonlyMap<NormalizedKey, unknown>) => {
  let ok = true;
  entries.forEach((value, key) => {
    if (!ok) return;
    w.arrayHeader(2);
    ok = w.value(key) && w.value(value);
  });
  return ok;
};

const writeMapEntries = (w: MsgpackWriter, entries: ReadonlyMap<NormalizedKey, unknown>) => {
  let ok = true;
  entries.forEach((value, key) => {
    if (!ok) return;
    w.arrayHeader(2);
    ok = w.value(key) && writeMapValue(w, value);
  });
  return ok;
};

/** A map state's live value (a `Map`) in its snapshot form: an array of [key, value] pairs. */
const writeMapValue = (w: MsgpackWriter, value: unknown): boolean => {
  if (!(value instanceof Map)) return false;
  w.arrayHeader(value.size);
  let ok = true;
  value.forEach((v, k) => {
    if (!ok) return;
    w.arrayHeader(2);
    ok = w.value(k) && w.value(v);
  });
  return ok;
};

const unencodable = (
  keyGroup: number,
  states: ReadonlyArray<{ readonly name: string }>,
  e: unknown,
): EddyError => {
  const names = states.map((s) => `'${s.name}'`).join(', ');
  return new EddyError(
    'EDDY_STATE',
    `cannot write key group ${keyGroup} (states ${names}) to a checkpoint: ` +
      `${(e as Error).message}; state values must be plain data (no functions or symbols)`,
    { domain: 'user', cause: e },
  );
};

/**
 * Decodes a block written by {@link encodeKeyGroupBlock}. `where` names the block in errors.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` when the bytes are not such a block.
 */
export const decodeKeyGroupBlock = (
  bytes: Uint8Array,
  where = 'key-group block',
): KeyGroupSnapshot => {
  const block = decodeBlock(bytes, where);
  if (block.states.some((s) => s.deleted !== undefined)) {
    throw malformedBlockError(where, 'a base block holds deleted keys (a delta block)');
  }
  return block as KeyGroupSnapshot;
};

/**
 * Decodes a base or delta block (see the module note). `where` names the block in errors.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` when the bytes are not such a block.
 */
export const decodeBlock = (bytes: Uint8Array, where = 'key-group block'): DecodedBlock => {
  let raw: unknown;
  try {
    raw = unpackBlock(bytes);
  } catch (e) {
    throw malformedBlockError(where, `not msgpack (${(e as Error).message})`, e);
  }
  const fail = (reason: string) => malformedBlockError(where, reason);
  if (!Array.isArray(raw) || raw.length !== 2) throw fail('expected [keyGroup, states]');
  const [keyGroup, states] = raw as [unknown, unknown];
  if (!Number.isSafeInteger(keyGroup) || (keyGroup as number) < 0) {
    throw fail(`key group ${String(keyGroup)} is not a non-negative integer`);
  }
  if (!Array.isArray(states)) throw fail('states is not an array');
  return { keyGroup: keyGroup as number, states: states.map((s, i) => decodeState(s, i, fail)) };
};

const decodeState = (
  raw: unknown,
  i: number,
  fail: (reason: string) => Error,
): DecodedBlock['states'][number] => {
  if (!Array.isArray(raw) || (raw.length !== 3 && raw.length !== 4))
    throw fail(`state #${i} is not [name, kind, entries] or [name, kind, entries, deleted]`);
  const [name, kind, entries, deleted] = raw as [unknown, unknown, unknown, unknown];
  if (typeof name !== 'string') throw fail(`state #${i} has no name`);
  if (kind !== null && (typeof kind !== 'string' || !KINDS.has(kind))) {
    throw fail(`state '${name}' has unknown kind ${String(kind)}`);
  }
  if (!Array.isArray(entries) || !entries.every(isEntry)) {
    throw fail(`state '${name}' entries are not [key, value] pairs with primitive keys`);
  }
  const typed = entries as Array<readonly [NormalizedKey, unknown]>;
  const state: State =
    kind === null ? { name, entries: typed } : { name, kind: kind as StateKind, entries: typed };
  if (raw.length === 3) return state;
  if (!Array.isArray(deleted) || !deleted.every(isKey)) {
    throw fail(`state '${name}' deleted keys are not primitive keys`);
  }
  return { ...state, deleted: deleted as NormalizedKey[] };
};

const isKey = (k: unknown): boolean => {
  const t = typeof k;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint';
};

const isEntry = (e: unknown): boolean => Array.isArray(e) && e.length === 2 && isKey(e[0]);
