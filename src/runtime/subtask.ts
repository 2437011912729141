/**
 * One parallel subtask of one chain: its head (a source reader or an input gate), the
 * chained operators, and the network outputs at the tail. Records move through the chain
 * synchronously; the only awaits are per batch (poll, next frame, backpressure, batched I/O).
 *
 * The loop is a mailbox loop, as Flink's: control actions (checkpoint triggers and aborts,
 * split assignments, processing-time timers) are queued in the subtask's mailbox and run
 * before the next batch, and the loop yields to the event loop at least every
 * {@link YIELD_BUDGET_MS} of record work, whatever the source does, so the worker's control
 * messages and timers always get in (a source that never does real I/O would otherwise starve
 * everything else on its thread).
 *
 * Checkpoints: a source subtask takes its snapshot when the trigger's mail runs (between two
 * polls) and sends the barrier downstream; any other subtask aligns barriers with a
 * {@link BarrierAligner} (per checkpoint id: a newer barrier or an abort gives up the current
 * alignment). Held-back frames keep their credit, so the upstream of a held channel stalls
 * instead of filling memory.
 */

import type { ChainView } from '../checkpoint/index.js';
import { type CheckpointBarrier, END_OF_INPUT, STOPPED_INPUT } from '../core/elements.js';
import { attributeTo, describeSubtask, EddyError, type SubtaskRef } from '../core/errors.js';
import { computeKeyGroupRange, type KeyGroupRange } from '../keygroups/index.js';
import type { KeyedStateBackendFactory } from '../state/backend.js';
import { HeapKeyedStateBackend } from '../state/heap-keyed-backend.js';
import { HeapOperatorStateStore } from '../state/operator-state.js';
import type { LazyKeyGroup, OperatorStateSnapshot } from '../state/types.js';
import { type AlignerEvent, BarrierAligner } from './barrier-aligner.js';
import { faultPoint } from './faults.js';
import type { JobGraph, JobNode } from './graph.js';
import { NO_SPLITS, type SourceReader, type SourceSplits } from './io.js';
import { KeyedCheckpointer, type KeyedSnapshot } from './keyed-checkpointer.js';
import { SubtaskMetrics, type SubtaskMetricsReport } from './metrics.js';
import {
  isTwoInput,
  type OperatorContext,
  type Output,
  type StreamOperator,
  type TwoInputStreamOperator,
} from './operator.js';
import { type KeyGroupAware, takesKeyGroups, userFailure } from './operators/base.js';
import {
  ChainedOutput,
  CountingOutput,
  EdgeOutput,
  FanOutOutput,
  NO_OUTPUT,
  RoutedOutput,
} from './output.js';
import type { Chain, ChannelSpec, ExecutionPlan } from './plan.js';
import type { ReaderEvent } from './protocol.js';
import { recordTime } from './record-time.js';
import { MAX_WATERMARK, MIN_WATERMARK, type ProcessingClock, wallClock } from './time.js';
import { ChannelWriter } from './transport/channel-writer.js';
import type { Exchange } from './transport/exchange.js';
import { type InboundFrame, InputGate } from './transport/input-gate.js';
import { SourceWatermarks } from './watermarks.js';

/**
 * Longest stretch of record work before a subtask loop yields to the event loop (so control
 * messages, timers and other subtasks on the thread run). A few ms keeps the overhead of a
 * yield (~tens of µs) far below 1% while bounding control latency.
 */
export const YIELD_BUDGET_MS = 5;

/** How long a source whose poll said 'idle' waits before polling again without a wake-up. */
export const IDLE_POLL_BACKOFF_MS = 50;

/**
 * Records per batch on each channel of an edge output with `fanOut` channels: the full batch
 * size up to 16 channels, then less (at least 64), so what a sender may hold in flight and in
 * buffers over all its channels, `fanOut × (credits + 2) × batch`, stays near that of 16
 * channels instead of growing with the parallelism (at p=128 a hash edge has 128 channels per
 * sender, 16,384 in all).
 */
export const fanOutBatchSize = (batchSize: number, fanOut: number): number =>
  Math.max(Math.min(batchSize, 64), Math.min(batchSize, Math.floor((batchSize * 16) / fanOut)));

/** The default backend: keyed state on the JS heap. */
const heapBackend: KeyedStateBackendFactory = (options) => new HeapKeyedStateBackend(options);

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface ExchangeOptions {
  /** Records per network batch. */
  readonly batchSize: number;
  /** Frames in flight per channel before the sender waits. */
  readonly creditsPerChannel: number;
}

/** State restored into one operator of the chain (by uid). */
export interface RestoredOperatorState {
  readonly operatorState: OperatorStateSnapshot | undefined;
  /** Key groups read and verified, decoded by the backend on first access. */
  readonly keyGroups: readonly LazyKeyGroup[];
  /**
   * The restored chains of the subtask's key groups when its next incremental checkpoint may
   * refer to them (see keyed-checkpointer.ts); undefined otherwise.
   */
  readonly chains?: ChainView | undefined;
}

/** The synchronous copy of one operator's state taken at a checkpoint. */
export interface OperatorSnapshot {
  readonly uid: string;
  readonly subtaskIndex: number;
  readonly keyGroupRange: KeyGroupRange | undefined;
  /** The keyed state's snapshot; whoever consumes the snapshot must release it. */
  readonly keyed: KeyedSnapshot | undefined;
  readonly operatorState: OperatorStateSnapshot;
}

export interface TaskSnapshot {
  readonly checkpointId: number;
  readonly chain: number;
  readonly subtaskIndex: number;
  readonly operators: OperatorSnapshot[];
  /** Duration of the synchronous part (user hooks + consistent copy). */
  readonly syncMs: number;
  /**
   * The connectors' asynchronous snapshot parts (`snapshotStateAsync`), if any: the worker
   * awaits it before acknowledging; a rejection declines the checkpoint.
   */
  readonly asyncPart: Promise<void> | undefined;
}

export interface SubtaskEnv {
  readonly stopSignal: AbortSignal;
  readonly checkpointing: boolean;
  /** Checkpoint keyed state incrementally (savepoints stay full). */
  readonly incremental?: boolean | undefined;
  /** Creates each keyed operator's state backend; default: the heap backend. */
  readonly keyedStateBackend?: KeyedStateBackendFactory | undefined;
  /** Restored state by operator uid (absent: the operator starts empty). */
  readonly restored: ReadonlyMap<string, RestoredOperatorState>;
  /** Receives every snapshot this subtask takes; the worker writes it out asynchronously. */
  readonly onSnapshot: (snapshot: TaskSnapshot) => void;
  /** This subtask gave up checkpoint `checkpointId` (a newer barrier came first). */
  readonly onDecline?: ((checkpointId: number, reason: string) => void) | undefined;
  /** True once a stop with drain was requested (read when the input ends by the stop). */
  readonly draining?: (() => boolean) | undefined;
  /** A source reader's event for its split enumerator (`ctx.sendSourceEvent`). */
  readonly sendSourceEvent?: ((uid: string, subtask: number, event: unknown) => void) | undefined;
  /** Called after this subtask processed its first records (once per batch until then). */
  readonly onFirstRecord?: (() => void) | undefined;
  /** Processing time; the wall clock unless a test injects one. */
  readonly clock?: ProcessingClock | undefined;
}

interface Member {
  readonly node: JobNode;
  readonly ref: SubtaskRef;
  readonly metrics: SubtaskMetrics;
  readonly operator: StreamOperator | undefined;
  readonly ctx: OperatorContext;
  readonly operatorState: HeapOperatorStateStore;
  readonly keyGroupRange: KeyGroupRange | undefined;
  readonly checkpointer: KeyedCheckpointer | undefined;
}

export class SubtaskRunner {
  readonly writers: ChannelWriter[] = [];
  readonly gate: InputGate | undefined;
  private readonly members: Member[];
  private reader: SourceReader<unknown> | undefined;
  private headOutput: Output<unknown> = NO_OUTPUT;
  private batchHooks: StreamOperator[] = [];
  /** Highest checkpoint this subtask snapshotted. */
  private lastSnapshot = 0;
  /** Highest checkpoint the master aborted: triggers and barriers up to it are obsolete. */
  private lastAborted = 0;
  /** Aligns barriers of a subtask with inputs (undefined for sources). */
  private aligner: BarrierAligner | undefined;
  /** Actions to run on this subtask's loop between batches (the mailbox). */
  private readonly mail: Array<() => void> = [];
  /** Wakes a source waiting after an 'idle' poll (set while it waits). */
  private wake: (() => void) | undefined;
  /** A wake-up that came while the source was not waiting: its next wait returns at once. */
  private wakePending = false;
  /** When the current stretch of record work started (see YIELD_BUDGET_MS). */
  private sliceStart = 0;
  /** Whether the last watermark status this subtask sent downstream was idle. */
  private sentIdle = false;
  /**
   * Metrics beside the counters, read only when the master samples: the event-time
   * watermark this subtask reached (updated per batch or watermark, never per record) and
   * the wall time (ms) it spent waiting for output credit, i.e. backpressured.
   */
  private watermark = MIN_WATERMARK;
  private backpressuredMs = 0;
  /** All input processed and `finish` called: the state no longer changes. */
  finished = false;
  /**
   * Set when the job is torn down after a failure. The loops stop at their next await, so a
   * cancelled subtask never writes or commits output concurrently with a restarted job
   * (which matters when both run in one thread).
   */
  private cancelled = false;

  constructor(
    private readonly graph: JobGraph,
    private readonly plan: ExecutionPlan,
    readonly chain: Chain,
    readonly subtaskIndex: number,
    private readonly exchange: Exchange,
    private readonly options: ExchangeOptions,
    private readonly env: SubtaskEnv,
  ) {
    this.members = chain.nodeIds.map((id) => this.member(graph.nodes[id]!));
    const inbound = plan.channels.filter(
      (c) => c.to.chain === chain.index && c.to.subtask === subtaskIndex,
    );
    if (this.head.node.kind !== 'source') {
      this.gate = new InputGate(inbound);
      for (const c of inbound) exchange.registerGate(c, this.gate);
      this.aligner = new BarrierAligner(inbound.map((c) => c.id));
    }
  }

  get label(): string {
    return describeSubtask(this.head.ref);
  }

  get isSource(): boolean {
    return this.head.node.kind === 'source';
  }

  /** The uid of the chain's head (the source's uid for a source subtask). */
  get sourceUid(): string {
    return this.head.node.uid;
  }

  private get head(): Member {
    return this.members[0]!;
  }

  /** Opens operators tail first, so each one's output is ready before anything upstream runs. */
  async open(): Promise<void> {
    let output = this.tailOutput();
    for (let i = this.members.length - 1; i >= 0; i--) {
      const m = this.members[i]!;
      if (m.operator) {
        await this.attribute(m, () => m.operator!.open(m.ctx, output));
        const prev = this.members[i - 1];
        // A source counts its records out itself (as it emits them).
        const from = prev?.operator ? prev.metrics : undefined;
        output = new ChainedOutput(m.operator, m.metrics, m.ref, from);
      } else {
        this.headOutput = output;
      }
    }
    if (this.head.node.kind !== 'source') this.headOutput = output;
    this.batchHooks = this.members.flatMap((m) => (m.operator?.endOfBatch ? [m.operator] : []));
    const h = this.head;
    if (h.node.kind === 'source') {
      const uid = h.node.uid;
      this.reader = h.node.source.createReader({
        ...h.ctx,
        splits: this.sourceSplits(),
        wakeup: () => this.wakeup(),
        sendSourceEvent: (event) => this.env.sendSourceEvent?.(uid, this.subtaskIndex, event),
      });
      await this.attribute(h, () => this.reader!.open());
    }
  }

  /** Processes the input to its end and calls `finish` down the chain; does not close. */
  async run(): Promise<void> {
    try {
      if (this.reader) await this.runSource(this.reader);
      else await this.runInputs(this.gate!);
      await this.finish();
    } catch (e) {
      throw this.wrap(this.head, e);
    }
  }

  /**
   * Asks for checkpoint `barrier`. A finished subtask (quiescent state) takes it at once; a
   * running source takes it when the mail runs, between two polls; any other subtask takes it
   * when the barrier has arrived on all its inputs (or they ended).
   */
  requestCheckpoint(barrier: CheckpointBarrier): void {
    if (this.obsolete(barrier.checkpointId)) return;
    if (this.finished) {
      this.snapshot(barrier, false);
      this.aligner?.markTaken(barrier.checkpointId);
    } else if (this.isSource) {
      this.post(() => {
        // Hazard: the subtask may have finished meanwhile; then the worker asks again.
        if (!this.obsolete(barrier.checkpointId) && !this.finished) this.snapshot(barrier, true);
      });
    }
  }

  /**
   * The master aborted checkpoint `checkpointId` (and every older one): an alignment of it is
   * given up (held channels released), a trigger not yet taken is dropped, and the
   * connectors are told.
   */
  abortCheckpoint(checkpointId: number): void {
    this.lastAborted = Math.max(this.lastAborted, checkpointId);
    this.post(() => {
      if (this.aligner) this.alignerEvents(this.aligner.onAbort(checkpointId));
    });
  }

  /** Runs the connectors' `notifyCheckpointAborted` hooks (after {@link abortCheckpoint}). */
  notifyCheckpointAborted(checkpointId: number): Promise<void> {
    return this.notifyMembers('notifyCheckpointAborted', checkpointId);
  }

  notifyCheckpointComplete(checkpointId: number): Promise<void> {
    return this.notifyMembers('notifyCheckpointComplete', checkpointId);
  }

  /** Calls `hook` on every operator of the chain and, at its head, on the source reader. */
  private async notifyMembers(
    hook: 'notifyCheckpointComplete' | 'notifyCheckpointAborted',
    checkpointId: number,
  ): Promise<void> {
    if (this.cancelled) return;
    for (const m of this.members) {
      await this.attribute(m, async () => {
        await m.operator?.[hook]?.(checkpointId);
        if (m === this.head) await this.reader?.[hook]?.(checkpointId);
      });
    }
  }

  /** An event from the source's split enumerator; applied between two polls. */
  deliverReaderEvent(event: ReaderEvent): void {
    this.post(() => {
      const r = this.reader;
      if (!r) throw new EddyError('EDDY_INTERNAL', `${this.label}: not a source`);
      if (event.kind === 'splits') r.addSplits?.(event.splits);
      else if (event.kind === 'noMoreSplits') r.notifyNoMoreSplits?.();
      else r.handleSourceEvent?.(event.event);
    });
  }

  cancel(): void {
    this.cancelled = true;
    this.wakeup();
    this.gate?.interrupt();
  }

  /** Queues a control action for this subtask's loop and wakes it. */
  private post(action: () => void): void {
    this.mail.push(action);
    this.gate?.interrupt();
    this.wakeup();
  }

  /**
   * Wakes a source waiting after an 'idle' poll (or makes its next wait return at once); the
   * worker calls it when the job is asked to stop.
   */
  wakeup(): void {
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    } else {
      this.wakePending = true;
    }
  }

  private obsolete(checkpointId: number): boolean {
    return checkpointId <= this.lastSnapshot || checkpointId <= this.lastAborted;
  }

  /** Releases resources; after a failure sinks discard their in-progress output. */
  async close(failed: boolean): Promise<void> {
    for (const m of this.members) {
      try {
        await m.operator?.close?.(failed);
      } catch (e) {
        if (!failed) throw this.wrap(m, e);
      }
    }
    try {
      await this.reader?.close();
    } catch (e) {
      if (!failed) throw this.wrap(this.head, e);
    } finally {
      // Frees what the backends hold (an on-disk store is closed and deleted once the views
      // still being written are released).
      for (const m of this.members) m.ctx.keyedState?.dispose();
    }
  }

  metrics(): SubtaskMetricsReport[] {
    // Chained operators share the subtask's loop: its backpressure and watermark are theirs.
    const shared: Record<string, number> = { backpressuredMs: this.backpressuredMs };
    if (this.watermark > MIN_WATERMARK && this.watermark < MAX_WATERMARK) {
      shared.watermark = this.watermark;
    }
    return this.members.map((m) => ({
      nodeId: m.node.id,
      operatorName: m.node.name,
      kind: m.node.kind === 'source' ? 'source' : this.isSink(m.node) ? 'sink' : 'operator',
      subtaskIndex: this.subtaskIndex,
      values: { ...m.metrics.snapshot(), ...shared },
    }));
  }

  /** Sends partial batches (buffer timeout), unless the channel is already backlogged. */
  flushIdle(): void {
    for (const w of this.writers) if (!w.backlogged && w.hasBufferedRecords) w.flush();
  }

  /** Per-split watermarks of a source subtask with a watermark strategy. */
  private sourceWatermarks: SourceWatermarks | undefined;

  private sourceSplits(): SourceSplits {
    const node = this.head.node;
    if (node.kind !== 'source' || node.watermarks === undefined) return NO_SPLITS;
    const wm = new SourceWatermarks(node.watermarks, this.head.ctx.clock);
    this.sourceWatermarks = wm;
    return { watermarked: true, add: (id) => wm.add(id), finish: (handle) => wm.finish(handle) };
  }

  /** The source's emit: counts, and with event time feeds the record's split watermark. */
  private sourceEmit(): (record: unknown, split?: number) => void {
    const head = this.head;
    const metrics = head.metrics;
    const out = this.headOutput;
    const wm = this.sourceWatermarks;
    if (wm === undefined || head.node.kind !== 'source') {
      return (r) => {
        metrics.recordsOut++;
        out.collect(r);
      };
    }
    const timestampOf = head.node.watermarks!.timestampOf;
    return (r, split) => {
      metrics.recordsOut++;
      let ts: number;
      try {
        ts = timestampOf(r);
      } catch (e) {
        throw userFailure(head.ref, 'the timestamp assigner', metrics.recordsOut, e);
      }
      wm.onRecord(split, ts);
      out.collect(r);
    };
  }

  /** After a poll: sends the source's watermark and idleness downstream when they changed. */
  private emitSourceWatermark(last: number): number {
    const wm = this.sourceWatermarks;
    if (wm === undefined) return last;
    const { watermark, idle } = wm.current();
    if (!idle && watermark > last) {
      if (this.sentIdle) this.sendStatus(false);
      this.headOutput.emitWatermark(watermark);
      return watermark;
    }
    if (idle !== this.sentIdle) this.sendStatus(idle);
    return last;
  }

  private sendStatus(idle: boolean): void {
    this.sentIdle = idle;
    for (const w of this.writers) w.emitControl({ kind: 'status', idle });
  }

  private runMail(): void {
    while (this.mail.length > 0) this.mail.shift()!();
  }

  /**
   * Yields to the event loop once this stretch of work has run {@link YIELD_BUDGET_MS}.
   * Awaiting a resolved promise is only a microtask: a loop whose awaits never wait on real
   * I/O would otherwise never let a macrotask (a control message, a timer) run.
   */
  private async maybeYield(): Promise<void> {
    const now = performance.now();
    if (now - this.sliceStart < YIELD_BUDGET_MS) return;
    await yieldToEventLoop();
    this.sliceStart = performance.now();
  }

  /** After an 'idle' poll: waits for a wake-up, mail, the stop signal or a short back-off. */
  private async waitForWork(): Promise<void> {
    if (this.wakePending || this.mail.length > 0 || this.env.stopSignal.aborted) {
      this.wakePending = false;
      await yieldToEventLoop();
      this.sliceStart = performance.now();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, IDLE_POLL_BACKOFF_MS);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakePending = false;
    this.sliceStart = performance.now();
  }

  private async runSource(reader: SourceReader<unknown>): Promise<void> {
    const metrics = this.head.metrics;
    const out = this.headOutput;
    const emit = this.sourceEmit();
    let watermark = MIN_WATERMARK;
    let seenFirst = false;
    // A source without event time never sends a watermark: it says so at once (idle), so it
    // does not hold back operators that also read an event-time input (rules beside events,
    // a union). At its end it sends MAX_WATERMARK like any source.
    if (this.sourceWatermarks === undefined) this.sendStatus(true);
    this.sliceStart = performance.now();
    for (;;) {
      this.runMail();
      const result = await reader.poll(emit, this.options.batchSize);
      this.checkCancelled();
      watermark = this.emitSourceWatermark(watermark);
      this.watermark = watermark;
      if (!seenFirst && metrics.recordsOut > 0) {
        seenFirst = true;
        this.env.onFirstRecord?.();
      }
      await this.afterBatch();
      // A stop ends the input after this poll whatever the reader said: one that answers
      // 'idle' or 'more' without checking the stop signal must not keep the job running.
      if (result === 'end' || this.env.stopSignal.aborted) {
        // End of bounded input (or a drain): all event time has passed, so pending windows
        // and timers fire. A stop without drain is not the end of the input: they stay in
        // state for the restored job instead.
        if (this.realEnd()) {
          if (this.sentIdle) this.sendStatus(false);
          out.emitWatermark(MAX_WATERMARK);
        }
        this.runMail(); // a checkpoint triggered during the last poll precedes the end
        return;
      }
      if (result === 'idle') await this.waitForWork();
      else await this.maybeYield();
    }
  }

  /** The input ended for real (bounded input exhausted, or a stop with drain). */
  private realEnd(): boolean {
    return !this.env.stopSignal.aborted || this.env.draining?.() === true;
  }

  private async runInputs(gate: InputGate): Promise<void> {
    const op = this.head.operator!;
    const keyGroupOp = takesKeyGroups(op) ? op : undefined;
    const second = this.secondInputChannels(gate, op);
    const aligner = this.aligner!;
    const watermarks = new Map<number, number>(
      gate.channels.map((c) => [c.id, Number.NEGATIVE_INFINITY]),
    );
    const ended = new Set<number>();
    const idle = new Set<number>();
    let current = MIN_WATERMARK;
    this.held = [];
    this.replay = [];
    const live = () => gate.channels.length - ended.size;
    this.sliceStart = performance.now();
    while (ended.size < gate.channels.length) {
      this.runMail();
      const frame = this.replay.length > 0 ? this.replay.shift()! : await gate.next();
      this.checkCancelled();
      if (frame === undefined) continue; // woken for mail
      const { channel, element } = frame;
      if (aligner.isBlocked(channel.id)) {
        this.held.push(frame); // keeps its credit: the sender stalls
        continue;
      }
      switch (element.kind) {
        case 'records': {
          const rs = element.records;
          this.head.metrics.recordsIn += rs.length;
          const ts = element.timestamps;
          const kgs = keyGroupOp === undefined ? undefined : element.keyGroups;
          if (second?.has(channel.id)) {
            processSecondInput(op as TwoInputStreamOperator, rs, ts, kgs);
          } else if (kgs !== undefined) {
            // A hash edge's batch into a keyed operator: the sender's key groups, not rehashed.
            for (let i = 0; i < rs.length; i++) {
              if (ts !== undefined) recordTime.value = ts[i]!;
              keyGroupOp!.processRecordInGroup(rs[i], kgs[i]!);
            }
          } else if (ts === undefined) for (let i = 0; i < rs.length; i++) op.processRecord(rs[i]);
          else {
            for (let i = 0; i < rs.length; i++) {
              recordTime.value = ts[i]!;
              op.processRecord(rs[i]);
            }
          }
          if (rs.length > 0 && this.head.metrics.recordsIn === rs.length)
            this.env.onFirstRecord?.();
          break;
        }
        case 'watermark':
          watermarks.set(channel.id, element.timestamp);
          current = this.advanceWatermark(op, watermarks, idle, current);
          break;
        case 'status':
          if (element.idle) idle.add(channel.id);
          else idle.delete(channel.id);
          // Idle iff every live input is; then downstream leaves this subtask out too.
          {
            const allIdle = idle.size === live();
            if (allIdle !== this.sentIdle) this.sendStatus(allIdle);
            // The last active input went idle: as Flink's valve does, advance to the highest
            // watermark of the live inputs, or what the others reached would never count.
            current = allIdle
              ? this.flushIdleWatermark(op, watermarks, ended, current)
              : this.advanceWatermark(op, watermarks, idle, current);
          }
          break;
        case 'barrier':
          this.alignerEvents(aligner.onBarrier(channel.id, element));
          if (aligner.pending !== undefined) faultPoint('alignment', this.label);
          break;
        case 'end':
          // A channel that ended with its input sent MAX_WATERMARK first; one that was
          // stopped did not, and keeps holding the watermark where it was.
          ended.add(channel.id);
          idle.delete(channel.id);
          if (element.stopped) this.inputStopped = true;
          this.alignerEvents(aligner.onEndOfInput(channel.id));
          break;
      }
      this.watermark = current;
      this.exchange.returnCredit(channel, 1);
      await this.afterBatch();
      await this.maybeYield();
    }
  }

  /**
   * The channels of the head's second input (edges marked `input: 2`), or undefined when it
   * has one input.
   * @throws EddyError `EDDY_INTERNAL` if a second input feeds an operator that has none.
   */
  private secondInputChannels(gate: InputGate, op: StreamOperator): Set<number> | undefined {
    const ids = gate.channels.filter((c) => this.graph.edges[c.edge]!.input === 2).map((c) => c.id);
    if (ids.length === 0) return undefined;
    if (!isTwoInput(op)) {
      throw new EddyError(
        'EDDY_INTERNAL',
        `${this.label}: a second input into a one-input operator`,
      );
    }
    return new Set(ids);
  }

  /** Frames of blocked channels, in arrival order (see BarrierAligner). */
  private held: InboundFrame[] = [];
  /** Released frames, processed before anything new from the gate. */
  private replay: InboundFrame[] = [];
  /** Some input ended by a stop without drain (its `end` said so): not the end of input. */
  private inputStopped = false;

  private alignerEvents(events: readonly AlignerEvent[]): void {
    for (const e of events) {
      if (e.kind === 'aligned') this.snapshot(e.barrier, true);
      else if (e.kind === 'declined') {
        if (e.reason === 'newer-barrier') {
          this.env.onDecline?.(
            e.checkpointId,
            `${this.label}: a newer checkpoint's barrier came first`,
          );
        }
      } else {
        // Per channel, held frames came after any still in replay: append keeps the order.
        const released = new Set(e.channels);
        const keep: InboundFrame[] = [];
        for (const f of this.held) (released.has(f.channel.id) ? this.replay : keep).push(f);
        this.held = keep;
      }
    }
  }

  /**
   * Takes checkpoint `barrier`: user hooks write operator state, then a consistent copy of
   * all state is taken synchronously and handed to the worker to write; the barrier goes
   * downstream right after the copy, so processing resumes while the files are written.
   */
  private snapshot(barrier: CheckpointBarrier, forward: boolean): void {
    if (this.cancelled) return;
    const started = performance.now();
    const id = barrier.checkpointId;
    const asyncParts: Promise<void>[] = [];
    for (const m of this.members) {
      const op = m.operator;
      if (op?.snapshotState) op.snapshotState(id);
      else if (m === this.head && this.reader) this.reader.snapshotState(id);
      const part =
        op?.snapshotStateAsync?.(id) ??
        (m === this.head ? this.reader?.snapshotStateAsync?.(id) : undefined);
      if (part) asyncParts.push(part.catch((e) => Promise.reject(this.wrap(m, e))));
    }
    const operators = this.members.map((m) => ({
      uid: m.node.uid,
      subtaskIndex: this.subtaskIndex,
      keyGroupRange: m.keyGroupRange,
      keyed: m.checkpointer?.take(barrier.savepoint),
      operatorState: m.operatorState.snapshot(),
    }));
    this.lastSnapshot = id;
    if (forward) for (const w of this.writers) w.emitControl(barrier);
    this.env.onSnapshot({
      checkpointId: id,
      chain: this.chain.index,
      subtaskIndex: this.subtaskIndex,
      operators,
      syncMs: performance.now() - started,
      asyncPart: asyncParts.length === 0 ? undefined : Promise.all(asyncParts).then(() => {}),
    });
  }

  /**
   * Watermark of an operator = minimum over its input channels, leaving out idle ones (all
   * idle: no progress). Never goes backwards.
   */
  private advanceWatermark(
    op: StreamOperator,
    wms: Map<number, number>,
    idle: ReadonlySet<number>,
    current: number,
  ): number {
    let min = Number.POSITIVE_INFINITY;
    let any = false;
    for (const [id, w] of wms) {
      if (idle.has(id)) continue;
      any = true;
      if (w < min) min = w;
    }
    if (any && min > current) {
      op.processWatermark?.(min);
      return min;
    }
    return current;
  }

  private flushIdleWatermark(
    op: StreamOperator,
    wms: Map<number, number>,
    ended: ReadonlySet<number>,
    current: number,
  ): number {
    let max = MIN_WATERMARK;
    for (const [id, w] of wms) if (!ended.has(id) && w > max) max = w;
    if (max > current) {
      op.processWatermark?.(max);
      return max;
    }
    return current;
  }

  private async afterBatch(): Promise<void> {
    for (const op of this.batchHooks) {
      const p = op.endOfBatch!();
      if (p) await p;
    }
    for (const w of this.writers) {
      if (!w.backlogged) continue;
      // Timed only when blocked: the unblocked path stays free of clock reads.
      const blockedAt = performance.now();
      await w.drained();
      this.backpressuredMs += performance.now() - blockedAt;
    }
    this.checkCancelled();
  }

  private checkCancelled(): void {
    if (this.cancelled) throw new EddyError('EDDY_JOB_FAILED', `${this.label}: cancelled`);
  }

  /**
   * The input ended. At its real end (or a drain) every operator's `finish` runs down the
   * chain; after a stop without drain none does (what they would emit stays in state, to be
   * emitted once at the real end after a restore), only `endOfStoppedInput`.
   */
  private async finish(): Promise<void> {
    this.checkCancelled();
    const real = this.isSource ? this.realEnd() : !this.inputStopped;
    for (const m of this.members) {
      const op = m.operator;
      if (real && op?.finish) await this.attribute(m, () => op.finish!());
      if (!real && op?.endOfStoppedInput) await this.attribute(m, () => op.endOfStoppedInput!());
    }
    for (const w of this.writers) w.emitControl(real ? END_OF_INPUT : STOPPED_INPUT);
    for (const w of this.writers) await w.drained();
    this.finished = true;
  }

  private tailOutput(): Output<unknown> {
    const tail = this.members[this.members.length - 1]!;
    const outgoing = this.plan.channels.filter(
      (c) => c.from.chain === this.chain.index && c.from.subtask === this.subtaskIndex,
    );
    const byEdge = new Map<number, ChannelSpec[]>();
    for (const c of outgoing) byEdge.set(c.edge, [...(byEdge.get(c.edge) ?? []), c]);
    const outputs: Output<unknown>[] = [];
    const sideTags: Array<string | undefined> = [];
    for (const [edgeIndex, specs] of byEdge) {
      const edge = this.graph.edges[edgeIndex]!;
      sideTags.push(edge.sideOutput);
      const target = this.graph.nodes[edge.target]!;
      specs.sort((a, b) => a.to.subtask - b.to.subtask);
      const batchSize = fanOutBatchSize(this.options.batchSize, specs.length);
      const writers = specs.map(
        (s) =>
          new ChannelWriter(
            s,
            this.exchange,
            batchSize,
            this.options.creditsPerChannel,
            edge.timestamps,
          ),
      );
      for (const w of writers) {
        this.exchange.registerWriter(w);
        this.writers.push(w);
      }
      outputs.push(new EdgeOutput(writers, edge.partitioning, target.maxParallelism, tail.ref));
    }
    const main = outputs.filter((_, i) => sideTags[i] === undefined);
    const edges =
      main.length === 0 ? NO_OUTPUT : main.length === 1 ? main[0]! : new FanOutOutput(main);
    // A source counts its records out itself; a sink (no edges) has none.
    const mainOutput =
      tail.operator && main.length > 0 ? new CountingOutput(edges, tail.metrics) : edges;
    if (main.length === outputs.length) return mainOutput;
    const sides = new Map<string, Output<unknown>[]>();
    outputs.forEach((o, i) => {
      const tag = sideTags[i];
      if (tag !== undefined) sides.set(tag, [...(sides.get(tag) ?? []), o]);
    });
    return new RoutedOutput(
      mainOutput,
      new Map(
        [...sides].map(([tag, os]) => [tag, os.length === 1 ? os[0]! : new FanOutOutput(os)]),
      ),
    );
  }

  private member(node: JobNode): Member {
    const ref: SubtaskRef = {
      operatorName: node.name,
      operatorUid: node.uid,
      subtaskIndex: this.subtaskIndex,
      parallelism: node.parallelism,
    };
    const metrics = new SubtaskMetrics();
    const keyed = node.kind === 'operator' && node.keySelector !== undefined;
    const keyGroupRange = keyed
      ? computeKeyGroupRange(node.maxParallelism, node.parallelism, this.subtaskIndex)
      : undefined;
    const restored = this.env.restored.get(node.uid);
    const operatorState = new HeapOperatorStateStore();
    if (restored?.operatorState) operatorState.restore(restored.operatorState);
    const incremental = this.env.incremental === true;
    const createBackend = this.env.keyedStateBackend ?? heapBackend;
    const keyedState = keyGroupRange
      ? createBackend({
          keyGroupRange,
          maxParallelism: node.maxParallelism,
          trackChanges: incremental,
          operatorUid: node.uid,
          subtaskIndex: this.subtaskIndex,
        })
      : undefined;
    for (const kg of restored?.keyGroups ?? []) keyedState?.restoreKeyGroupLazily(kg);
    const checkpointer =
      keyedState && keyGroupRange
        ? new KeyedCheckpointer(keyedState, {
            uid: node.uid,
            subtaskIndex: this.subtaskIndex,
            keyGroupRange,
            incremental,
            restoredChains: restored?.chains,
          })
        : undefined;
    const ctx: OperatorContext = {
      subtask: ref,
      jobName: this.graph.name,
      maxParallelism: node.maxParallelism,
      operatorState,
      keyedState,
      isRestored: restored !== undefined,
      metrics,
      stopSignal: this.env.stopSignal,
      checkpointing: this.env.checkpointing,
      clock: this.env.clock ?? wallClock,
      runInMailbox: (action) => this.post(action),
    };
    const operator = node.kind === 'operator' ? node.createOperator() : undefined;
    return { node, ref, metrics, operator, ctx, operatorState, keyGroupRange, checkpointer };
  }

  /**
   * A sink operator (made by `sinkTo`). An operator whose output nobody reads (a `filter` of a
   * stream no one uses) has no outgoing edge either, but what it takes in was not written
   * anywhere: it must not count as written by sinks.
   */
  private isSink(node: JobNode): boolean {
    return node.kind === 'operator' && node.sink !== undefined;
  }

  private async attribute(m: Member, f: () => void | Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      throw this.wrap(m, e);
    }
  }

  /** Every error leaving a subtask names the operator and subtask it is attributed to. */
  private wrap(m: Member, e: unknown): EddyError {
    return attributeTo(m.ref, e);
  }
}

/**
 * A batch of the second input: with the sender's key groups into a keyed two-input operator,
 * else plain records; with carried timestamps when the edge has them.
 */
const processSecondInput = (
  op: TwoInputStreamOperator & Partial<KeyGroupAware>,
  rs: readonly unknown[],
  ts: readonly number[] | undefined,
  kgs: readonly number[] | undefined,
): void => {
  const grouped = kgs === undefined ? undefined : op.processRecordInGroup2;
  for (let i = 0; i < rs.length; i++) {
    if (ts !== undefined) recordTime.value = ts[i]!;
    if (grouped !== undefined) grouped.call(op, rs[i], kgs![i]!);
    else op.processRecord2(rs[i]);
  }
};
