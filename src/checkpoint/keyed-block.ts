/**
 * The bytes of one key group's keyed state: one self-contained msgpack block
 *
 *   [keyGroup, [[stateName, kind | null, [[key, value], ...]], ...]]
 *
 * Positional arrays rather than objects so the layout is fixed by this file, not by the
 * property order of a TypeScript interface. Pure; no I/O.
 */

import { EddyError } from '../core/errors.js';
import type { KeyGroupSnapshot, NormalizedKey, StateKind } from '../state/types.js';
import { packBlock, unpackBlock } from './block-codec.js';
import { malformedBlockError } from './errors.js';

type State = KeyGroupSnapshot['states'][number];

const KINDS: ReadonlySet<string> = new Set<StateKind>([
  'value',
  'list',
  'map',
  'reducing',
  'aggregating',
]);

/**
 * Encodes a key group's snapshot as one block. Hazard: the result may be a view into the
 * encoder's shared buffer; write or copy it before encoding the next block.
 * @throws EddyError `EDDY_STATE` when a value cannot be encoded (e.g. a symbol), naming the
 *   key group and state.
 */
export const encodeKeyGroupBlock = (snapshot: KeyGroupSnapshot): Uint8Array => {
  const states = snapshot.states.map((s) => [s.name, s.kind ?? null, s.entries]);
  try {
    return packBlock([snapshot.keyGroup, states]);
  } catch (e) {
    const names = snapshot.states.map((s) => `'${s.name}'`).join(', ');
    throw new EddyError(
      'EDDY_STATE',
      `cannot write key group ${snapshot.keyGroup} (states ${names}) to a checkpoint: ` +
        `${(e as Error).message}; state values must be plain data (no functions or symbols)`,
      { domain: 'user', cause: e },
    );
  }
};

/**
 * Decodes a block written by {@link encodeKeyGroupBlock}. `where` names the block in errors.
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` when the bytes are not such a block.
 */
export const decodeKeyGroupBlock = (
  bytes: Uint8Array,
  where = 'key-group block',
): KeyGroupSnapshot => {
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

const decodeState = (raw: unknown, i: number, fail: (reason: string) => Error): State => {
  if (!Array.isArray(raw) || raw.length !== 3)
    throw fail(`state #${i} is not [name, kind, entries]`);
  const [name, kind, entries] = raw as [unknown, unknown, unknown];
  if (typeof name !== 'string') throw fail(`state #${i} has no name`);
  if (kind !== null && (typeof kind !== 'string' || !KINDS.has(kind))) {
    throw fail(`state '${name}' has unknown kind ${String(kind)}`);
  }
  if (!Array.isArray(entries) || !entries.every(isEntry)) {
    throw fail(`state '${name}' entries are not [key, value] pairs with primitive keys`);
  }
  const typed = entries as Array<readonly [NormalizedKey, unknown]>;
  return kind === null
    ? { name, entries: typed }
    : { name, kind: kind as StateKind, entries: typed };
};

const isEntry = (e: unknown): boolean => {
  if (!Array.isArray(e) || e.length !== 2) return false;
  const t = typeof e[0];
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint';
};
