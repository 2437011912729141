/**
 * Positions of sequence-numbered splits (pure): a NATS subject read by stream sequence, and
 * later a Kafka partition read by offset, share it. A split's position is the sequence of the
 * last record emitted (0: none yet), kept in operator list state in `split` mode, one element
 * per split, so a restore at any parallelism re-deals the splits and each one continues at
 * `position + 1`: no record is emitted twice or skipped.
 */
import { EddyError } from '../../core/errors.js';

/** One split's position, as stored in operator state and assigned by the enumerator. */
export interface SequenceSplitState {
  /** The split's id: a NATS subject (a Kafka `topic/partition`). */
  split: string;
  /** Sequence of the last record emitted; 0 before the first. The next read starts after it. */
  position: number;
  /**
   * Bounded reads only: the last sequence to read (inclusive), fixed when the job first
   * started, so a restore keeps the same bound. Absent: unbounded.
   */
  end?: number;
  /** Bounded reads only: every record up to `end` was emitted. */
  finished: boolean;
  /** How many splits the source has in all (for dividing a total rate). */
  of?: number;
}

const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Copies and checks one split from state or from the enumerator; `what` names it for the
 * message (e.g. "nats source: restored 'nats-splits' element").
 */
export const checkSequenceSplit = (e: unknown, what: string): SequenceSplitState => {
  const s = e as Partial<SequenceSplitState> | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.split !== 'string' ||
    !isSeq(s.position) ||
    (s.end !== undefined && !isSeq(s.end)) ||
    typeof s.finished !== 'boolean' ||
    (s.of !== undefined && !(Number.isSafeInteger(s.of) && s.of > 0))
  ) {
    throw new EddyError('EDDY_STATE', `${what} is not a split position: ${show(e)}`);
  }
  const out: SequenceSplitState = { split: s.split, position: s.position, finished: s.finished };
  if (s.end !== undefined) out.end = s.end;
  if (s.of !== undefined) out.of = s.of;
  return out;
};

const show = (e: unknown): string => {
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
};

/**
 * The splits reader `subtask` of `parallelism` gets: split `k` (in the given, stable order)
 * goes to reader `k % parallelism`, as the file source deals its files.
 *
 * @example
 * assignedTo(['a', 'b', 'c'], 2, 0); // ['a', 'c']
 */
export const assignedTo = <S>(splits: readonly S[], parallelism: number, subtask: number): S[] =>
  splits.filter((_, k) => k % parallelism === subtask);

/**
 * What happens to a fetched record of a bounded split: `emit` it, `emit-last` (emit, then the
 * split is finished), or `beyond` (past the bound: drop it, the split is finished). `pending`
 * is the number of records of the split after this one on the server, if known: 0 means
 * nothing up to the bound is left (records in between were deleted).
 */
export const boundedStep = (
  seq: number,
  end: number,
  pending: number | undefined,
): 'emit' | 'emit-last' | 'beyond' => {
  if (seq > end) return 'beyond';
  if (seq === end || pending === 0) return 'emit-last';
  return 'emit';
};

/** Whether a split starts finished: bounded, and nothing left after its position. */
export const finishedAtStart = (s: SequenceSplitState): boolean =>
  s.finished || (s.end !== undefined && s.position >= s.end);
