/**
 * The errors both keyed backends raise, in one place: the contract suites run the same
 * assertions against each backend, so their messages must not drift apart.
 */
import { EddyError } from '../core/errors.js';
import type { KeyGroupRange } from './state-table.js';
import type { StateKind } from './types.js';

/** An `EDDY_STATE` error: `user` for the job's mistakes, `internal` for eddy's. */
export const stateError = (message: string, domain: 'user' | 'internal'): EddyError =>
  new EddyError('EDDY_STATE', message, { domain });

/** A backend used after `dispose()`. */
export const disposedError = (what: string): EddyError =>
  stateError(`cannot ${what} a disposed state backend`, 'internal');

/** A name registered as one kind of state and asked for as another. */
export const kindConflictError = (name: string, registered: StateKind, asked: StateKind) =>
  stateError(
    `state '${name}' is already registered as ${registered} state and cannot also be ` +
      `registered as ${asked} state; use a different name for each state`,
    'user',
  );

/** A restored state registered as another kind than the snapshot recorded. */
export const restoredKindError = (name: string, restored: StateKind, asked: StateKind) =>
  stateError(
    `state '${name}' was restored as ${restored} state but is now registered as ` +
      `${asked} state; keep the kind or give the new state another name`,
    'user',
  );

/**
 * A snapshot's state whose kind disagrees with the backend's: registered as another kind (the
 * job changed the state's kind), or restored as another (the snapshots disagree: eddy's fault).
 */
export const restoreKindError = (
  name: string,
  kind: StateKind,
  known: StateKind,
  registered: boolean,
): EddyError =>
  stateError(
    `cannot restore state '${name}' as ${kind} state: it is ` +
      `${registered ? 'registered' : 'already restored'} as ${known} state`,
    registered ? 'user' : 'internal',
  );

/** A key group outside the backend's range (`what`: the operation, e.g. 'set key in'). */
export const outOfRangeError = (
  keyGroup: number,
  what: string,
  range: KeyGroupRange,
  maxParallelism: number,
): EddyError => {
  const hint = what === 'set key in' ? '; the key was routed to the wrong subtask' : '';
  return stateError(
    `cannot ${what} key group ${keyGroup}: outside this backend's key-group range ` +
      `[${range.start}, ${range.end}] (maxParallelism ${maxParallelism})${hint}`,
    'internal',
  );
};

/** A lazily restored key group whose bytes decoded as another key group. */
export const misdecodedError = (keyGroup: number, found: number): EddyError =>
  stateError(`lazily restored key group ${keyGroup} decoded as key group ${found}`, 'internal');
