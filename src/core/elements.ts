import type { CheckpointId } from './ids.js';

/**
 * Everything that flows on a stream is one of these. Records travel in batches (see
 * `RecordBatch`) so the hot path never allocates a wrapper per record; control elements
 * travel alone and are ordered with respect to the batches on the same channel.
 */
export type StreamElement<T = unknown> =
  | RecordBatch<T>
  | Watermark
  | WatermarkStatus
  | CheckpointBarrier
  | EndOfInput;

export interface RecordBatch<T = unknown> {
  readonly kind: 'records';
  readonly records: readonly T[];
  /**
   * Each record's event time (same length as `records`), only on edges whose stream carries
   * timestamps (after map, flatMap, process or a window with event time upstream).
   */
  readonly timestamps?: readonly number[] | undefined;
  /**
   * Each record's key group (same length as `records`), only on hash edges: computed once by
   * the sender's routing, so the keyed operator receiving the batch does not hash the key again.
   */
  readonly keyGroups?: readonly number[] | undefined;
}

/** No record with an event time <= `timestamp` will follow on this channel. */
export interface Watermark {
  readonly kind: 'watermark';
  readonly timestamp: number;
}

/**
 * The channel's producer is idle (no input for its idleness timeout): downstream leaves the
 * channel out of its watermark minimum until it is active again. Sent on changes only.
 */
export interface WatermarkStatus {
  readonly kind: 'status';
  readonly idle: boolean;
}

/** Aligned checkpoint barrier (Chandy-Lamport). */
export interface CheckpointBarrier {
  readonly kind: 'barrier';
  readonly checkpointId: CheckpointId;
  readonly timestamp: number;
  /** A savepoint is a self-contained, user-triggered checkpoint. */
  readonly savepoint: boolean;
}

/** The channel's producer has finished; nothing follows. */
export interface EndOfInput {
  readonly kind: 'end';
  /**
   * The input ended because the job was stopped without drain, not because it was exhausted:
   * downstream then does not `finish` (what it would emit stays in state for a restore).
   */
  readonly stopped: boolean;
}

export const recordBatch = <T>(records: readonly T[]): RecordBatch<T> => ({
  kind: 'records',
  records,
});
export const watermark = (timestamp: number): Watermark => ({ kind: 'watermark', timestamp });
export const END_OF_INPUT: EndOfInput = Object.freeze({ kind: 'end', stopped: false });
export const STOPPED_INPUT: EndOfInput = Object.freeze({ kind: 'end', stopped: true });
