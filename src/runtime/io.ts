/**
 * The connector contract: what a source or sink implements so the runtime can drive it.
 * Connectors live in `src/connectors` and import only this file, the state contract and core.
 */
import type { SubtaskRef } from '../core/errors.js';
import type { OperatorStateStore } from '../state/types.js';

/** A monotonically increasing metric. */
export interface Counter {
  inc(n?: number): void;
}

/** Named counters reported to the coordinator (and shown by the CLI and metrics). */
export interface MetricGroup {
  counter(name: string): Counter;
}

/** What a source reader or sink writer gets from the runtime. */
export interface ConnectorContext {
  readonly subtask: SubtaskRef;
  /**
   * The job's name (`defineJob({ name })`): the same across restarts, `--resume`, savepoints
   * and rescales, unlike a run's job id. Connectors name what they leave on a server by it
   * (transaction ids, message ids, commit markers) so that a later run of the job finds them.
   */
  readonly jobName: string;
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
  /**
   * Wakes the subtask of a reader whose last `poll` returned `'idle'`: call it when data
   * arrives (e.g. from a client's message callback). Safe to call at any time, from any
   * callback of this thread; a wake-up before the subtask waits is not lost.
   */
  readonly wakeup: () => void;
  /**
   * Sends an event to this source's split enumerator in the job master (e.g. "splits
   * finished", "request more"). Delivered in order; a no-op for sinks and for sources
   * without an enumerator.
   */
  readonly sendSourceEvent: (event: unknown) => void;
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

/**
 * `'more'`: call poll again. `'idle'`: nothing available now; the subtask waits until the
 * reader calls `ctx.wakeup()`, a control action arrives (checkpoint, stop, timer) or a short
 * back-off passes, then polls again. `'end'`: the input is exhausted (or stopped).
 */
export type PollResult = 'more' | 'idle' | 'end';

/** Reads a source subtask's splits; polled by the runtime. */
export interface SourceReader<T> {
  /** Called once before the first poll: restore splits and positions from operator state. */
  open(): Promise<void>;
  /**
   * Emits the next records through `emit` (synchronously, at most `maxRecords`), then
   * resolves. Resolves 'end' once the bounded input is exhausted or the stop signal fired,
   * and never emits after that. One await per batch, never per record. `split` is the handle
   * from `ctx.splits.add` of the split the record came from (omit it for the implicit split).
   * Must return promptly when nothing is available (`'idle'`): never wait for data here, or
   * checkpoints and stops wait with it.
   */
  poll(emit: (record: T, split?: number) => void, maxRecords: number): Promise<PollResult>;
  /**
   * Synchronous part of a checkpoint: writes current positions into operator state. Runs
   * between two polls, right before the barrier is emitted.
   */
  snapshotState(checkpointId: number): void;
  /**
   * Asynchronous part of a checkpoint, awaited before this subtask acknowledges it while the
   * job keeps running (e.g. flush pending acknowledgements). A rejection declines the
   * checkpoint (the job keeps running).
   */
  snapshotStateAsync?(checkpointId: number): Promise<void>;
  /** Checkpoint `checkpointId` completed (e.g. acknowledge messages up to it upstream). */
  notifyCheckpointComplete?(checkpointId: number): Promise<void>;
  /** Checkpoint `checkpointId` was aborted: it will never complete. */
  notifyCheckpointAborted?(checkpointId: number): void | Promise<void>;
  /** Splits assigned by the enumerator (not called for sources without one). */
  addSplits?(splits: readonly unknown[]): void;
  /** The enumerator will assign no more splits: end once the assigned ones are done. */
  notifyNoMoreSplits?(): void;
  /** A custom event from the enumerator ({@link SplitEnumeratorContext.sendEventToReader}). */
  handleSourceEvent?(event: unknown): void;
  close(): Promise<void>;
}

/**
 * Runs in the job master, one per source operator: discovers splits and assigns them to the
 * source's readers (Flink's SplitEnumerator). Its state is part of every checkpoint (stored in
 * `_metadata`), taken when the checkpoint is triggered; split assignments made afterwards
 * reach the readers after their own snapshot for that checkpoint, so no split is in both.
 * A restart or rescale builds a new enumerator from the restored checkpoint's state.
 */
export interface SplitEnumerator {
  /** Called once, when every reader is open and before any polls. */
  start(): void | Promise<void>;
  /** A reader subtask is ready for splits (once per subtask per attempt, after `start`). */
  addReader(subtask: number): void;
  /** An event from a reader (`ctx.sendSourceEvent`). */
  handleSourceEvent?(subtask: number, event: unknown): void;
  /** The enumerator's state for checkpoint `checkpointId`: plain data (msgpack/JSON-safe). */
  snapshotState(checkpointId: number): unknown;
  notifyCheckpointComplete?(checkpointId: number): void;
  /** Checkpoint `checkpointId` was declined and will never complete. */
  notifyCheckpointAborted?(checkpointId: number): void;
  close(): void | Promise<void>;
}

/** What a split enumerator gets from the job master. */
export interface SplitEnumeratorContext {
  /** The source's parallelism (reader subtasks 0..p-1). */
  readonly parallelism: number;
  /** Its state from the restored checkpoint, or undefined on a fresh start. */
  readonly restoredState: unknown;
  /** Where restored reader state came from: readers keep their own splits (operator state). */
  readonly isRestored: boolean;
  assignSplits(subtask: number, splits: readonly unknown[]): void;
  signalNoMoreSplits(subtask: number): void;
  sendEventToReader(subtask: number, event: unknown): void;
  /**
   * Fails the job attempt from an asynchronous callback of the enumerator's own (e.g. a
   * periodic split discovery that lost its connection); a retriable error restarts it.
   */
  fail(error: unknown): void;
}

/** A source: creates one reader per subtask (and optionally a split enumerator). */
export interface Source<T> {
  /** Default operator name when the user gives none. */
  readonly defaultName: string;
  createReader(ctx: ConnectorContext): SourceReader<T>;
  /** Optional: the source's split enumerator, run by the job master. */
  createEnumerator?(ctx: SplitEnumeratorContext): SplitEnumerator;
}

/** Writes a sink subtask's records; takes part in checkpoints (two-phase commit). */
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
   * Optional: the subtask ends normally (after `finish` and the final checkpoint's commit, or
   * after a stop): release connections. Not called after `abort`.
   */
  close?(): Promise<void>;
  /**
   * Two-phase commit, phase one: called when the checkpoint barrier reaches the sink. Seal
   * the output written since the previous checkpoint as pending for `checkpointId` and write
   * what is pending into operator state. Must be quick and synchronous: it runs before the
   * barrier is forwarded; slow work belongs in `snapshotStateAsync`.
   */
  snapshotState?(checkpointId: number): void;
  /**
   * Phase one, asynchronous part: awaited before the subtask acknowledges `checkpointId`,
   * while records keep flowing (e.g. `PREPARE TRANSACTION`, pending publish acks). A rejection
   * declines the checkpoint; the job keeps running.
   */
  snapshotStateAsync?(checkpointId: number): Promise<void>;
  /** Phase two: checkpoint `checkpointId` completed; make its pending output (and older) visible. */
  notifyCheckpointComplete?(checkpointId: number): Promise<void>;
  /**
   * Checkpoint `checkpointId` was aborted and will never complete. Its pending output stays
   * pending and must be covered by the next checkpoint that completes.
   */
  notifyCheckpointAborted?(checkpointId: number): void | Promise<void>;
}

/** What {@link Sink.initializeGlobal} is told about the attempt about to start. */
export interface SinkGlobalContext {
  readonly jobName: string;
  /** The sink operator's uid. */
  readonly uid: string;
  readonly parallelism: number;
  /** The checkpoint or savepoint this attempt restores (undefined: it starts from scratch). */
  readonly restoredCheckpointId: number | undefined;
  /** 0 for a run's first attempt; 1, 2, … for restarts after failures within the run. */
  readonly attempt: number;
}

/** A sink: creates one writer per subtask. */
export interface Sink<T> {
  readonly defaultName: string;
  createWriter(ctx: ConnectorContext): SinkWriter<T>;
  /**
   * Optional, run once per attempt by the job master before any writer opens (Flink's
   * `initializeGlobal`): checks that need the whole sink (an output directory that must be
   * empty) and clean-up that must happen exactly once whatever the parallelism (e.g. resolving
   * the prepared transactions a failed attempt left behind). A rejection fails the attempt.
   */
  initializeGlobal?(ctx: SinkGlobalContext): Promise<void> | void;
}
