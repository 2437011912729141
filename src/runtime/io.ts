/**
 * The connector contract: what a source or sink implements so the runtime can drive it.
 * Connectors live in `src/connectors` and import only this file, the state contract and core.
 */
import type { SubtaskRef } from '../core/errors.js';
import type { OperatorStateStore } from '../state/types.js';

export interface Counter {
  inc(n?: number): void;
}

/** Named counters reported to the coordinator (and shown by the CLI and metrics). */
export interface MetricGroup {
  counter(name: string): Counter;
}

export interface ConnectorContext {
  readonly subtask: SubtaskRef;
  /** Per-subtask list state; positions live here so they survive checkpoints and rescaling. */
  readonly operatorState: OperatorStateStore;
  /** True when operator state was restored from a checkpoint or savepoint. */
  readonly isRestored: boolean;
  /** Aborted when the job is asked to stop gracefully: a source then ends its input early. */
  readonly stopSignal: AbortSignal;
  readonly metrics: MetricGroup;
  /**
   * True when the job takes checkpoints: sinks then make output visible only when the
   * checkpoint covering it completes (two-phase commit), and at end of input they prepare
   * their last output for the job's final checkpoint instead of committing it directly.
   */
  readonly checkpointing: boolean;
  /**
   * Split bookkeeping for per-split watermarks. A reader declares every split it will read in
   * `open()` (so a split not read yet holds the subtask's watermark back) and marks each one
   * finished when it is exhausted. Readers that never call it are one implicit split.
   */
  readonly splits: SourceSplits;
}

/** See {@link ConnectorContext.splits}. */
export interface SourceSplits {
  /**
   * True when the job tracks per-split watermarks (the source has a watermark strategy): a
   * reader of several splits should then read them interleaved, so that none is left unread
   * while the others advance. Otherwise splits are best read one after another (locality).
   */
  readonly watermarked: boolean;
  /** Declares a split; returns the handle to pass to `emit` with its records. */
  add(id: string): number;
  /** The split is exhausted: it no longer holds the watermark back. */
  finish(handle: number): void;
}

/** Split bookkeeping that records nothing: sinks, and sources without event time. */
export const NO_SPLITS: SourceSplits = Object.freeze({
  watermarked: false,
  add: () => 0,
  finish: () => {},
});

export type PollResult = 'more' | 'end';

export interface SourceReader<T> {
  /** Called once before the first poll: restore or assign splits and positions. */
  open(): Promise<void>;
  /**
   * Emits the next records through `emit` (synchronously, at most `maxRecords`), then
   * resolves. Resolves 'end' once the bounded input is exhausted or the stop signal fired,
   * and never emits after that. One await per batch, never per record. `split` is the handle
   * from `ctx.splits.add` of the split the record came from (omit it for the implicit split).
   */
  poll(emit: (record: T, split?: number) => void, maxRecords: number): Promise<PollResult>;
  /** Writes current positions into operator state; called just before a checkpoint. */
  snapshotState(checkpointId: number): void;
  close(): Promise<void>;
}

export interface Source<T> {
  /** Default operator name when the user gives none. */
  readonly defaultName: string;
  createReader(ctx: ConnectorContext): SourceReader<T>;
}

export interface SinkWriter<T> {
  open(): Promise<void>;
  /** Buffers one record; must not do per-record async work. */
  write(record: T): void;
  /** Called between batches: may write buffered output; awaiting it is backpressure. */
  flush(): Promise<void> | void;
  /**
   * End of input. Without checkpointing: make all output visible. With checkpointing:
   * prepare the remaining output as pending for the final checkpoint (committed by
   * notifyCheckpointComplete).
   */
  finish(): Promise<void>;
  /** Failure or cancellation: release resources and leave no visible partial output. */
  abort(): Promise<void>;
  /**
   * Two-phase commit, phase one: called when the checkpoint barrier reaches the sink. Seal
   * the output written since the previous checkpoint as pending for `checkpointId` and write
   * what is pending into operator state. Must be quick (no waiting on slow I/O beyond fsync).
   */
  snapshotState?(checkpointId: number): void;
  /** Phase two: checkpoint `checkpointId` completed; make its pending output (and older) visible. */
  notifyCheckpointComplete?(checkpointId: number): Promise<void>;
}

export interface Sink<T> {
  readonly defaultName: string;
  createWriter(ctx: ConnectorContext): SinkWriter<T>;
}
