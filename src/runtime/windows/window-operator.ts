/**
 * The keyed window operator (Flink's `WindowOperator` with the default event-time and
 * processing-time triggers).
 *
 * State. Everything per key lives in the keyed state backend, so checkpoints, restores and
 * rescaling carry windows with their keys and nothing here is per-key JS state:
 * - `__eddy.window.contents` (map): per window, the accumulator (reduce, aggregate) or the
 *   number of buffered records (process). Its keys are the window ids (`start:end`), so for
 *   non-merging windows it is also the key's set of live windows.
 * - `__eddy.window.elements` (map, process only): buffered record `i` of a window under
 *   `<window id>#<i>`: one map entry per record, so appending never copies a list (the backend
 *   holds values by reference for copy-on-write snapshots, so a stored array must not grow).
 * - `__eddy.window.sessions` (value, merging only): the key's session windows, each with the
 *   id its contents are stored under (Flink's "state window"): when a session grows, its
 *   contents stay where they are; only an event bridging two sessions moves contents.
 * - `__eddy.window.seq` (value, merging process only): a per-key arrival counter stored with
 *   each buffered record, so merged sessions list their records in arrival order.
 * - Timers (timers.ts) are keyed state too. They are deduplicated per (key, timestamp) with no
 *   window attached: a firing timer finds the key's windows whose end (or cleanup time) it is.
 *
 * Event time. A window fires (emits its result, keeping its contents) when the watermark
 * reaches its `maxTimestamp` and is cleared at `maxTimestamp + allowedLateness`. A record is
 * late when every window it belongs to is past its cleanup time; late records go to the late
 * side output, or are dropped and counted (`lateRecordsDropped`). A record arriving for a window
 * that already fired but is within the allowed lateness fires the window again at once.
 * Processing time: a record's time is the clock at arrival; a window fires and is cleared when
 * the clock reaches its `maxTimestamp`. Nothing fires in `finish`: the end of bounded input
 * sends the final watermark first, and a stop-with-savepoint keeps pending windows in state.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { Key } from '../../keygroups/index.js';
import { MapStateDescriptor, ValueStateDescriptor } from '../../state/descriptors.js';
import type { AggregateFunction, MapState, ValueState } from '../../state/types.js';
import type { ReduceFunction } from '../functions.js';
import type { Counter } from '../io.js';
import type { OperatorContext, Output, StreamOperator } from '../operator.js';
import { callHook, runtimeContext, userFailure } from '../operators/base.js';
import { recordTime } from '../record-time.js';
import type { OutputTag, TimeDomain } from '../time.js';
import { KeyedTimers } from '../timers.js';
import { compareWindows, TimeWindow, type WindowAssigner } from './assigners.js';
import type { ProcessWindowContext, ProcessWindowFunction } from './functions.js';
import { addWindow, parseWindowId, windowId } from './merging.js';
import {
  AggregateContents,
  type Contents,
  ListContents,
  ReduceContents,
} from './window-contents.js';

/** State names; the prefix keeps them apart from user and timer states. */
export const WINDOW_CONTENTS_STATE = '__eddy.window.contents';
export const WINDOW_ELEMENTS_STATE = '__eddy.window.elements';
export const WINDOW_SESSIONS_STATE = '__eddy.window.sessions';
export const WINDOW_SEQ_STATE = '__eddy.window.seq';

/**
 * The function a window applies: incremental (`reduce`, `aggregate`), optionally followed by a
 * process window function that gets the single result, or a `process` window function over
 * all buffered records.
 */
export type WindowFunctionSpec<IN, ACC, OUT, K> =
  | {
      readonly kind: 'reduce';
      readonly reduce: ReduceFunction<IN>;
      readonly window?: ProcessWindowFunction<IN, OUT, K> | undefined;
    }
  | {
      readonly kind: 'aggregate';
      readonly aggregate: AggregateFunction<IN, ACC, unknown>;
      readonly window?: ProcessWindowFunction<unknown, OUT, K> | undefined;
    }
  | { readonly kind: 'process'; readonly process: ProcessWindowFunction<IN, OUT, K> };

export interface WindowOperatorOptions<K, IN, ACC, OUT> {
  readonly assigner: WindowAssigner;
  readonly keySelector: (value: IN) => K;
  /** The records' event time; required by event-time assigners. */
  readonly timestampOf?: ((value: IN) => number) | undefined;
  readonly function: WindowFunctionSpec<IN, ACC, OUT, K>;
  /** Event time only: how long (ms) after a window fired it still accepts records. Default 0. */
  readonly allowedLateness?: number | undefined;
  /** Where late records go; without it they are dropped and counted. */
  readonly lateDataTag?: OutputTag<IN> | undefined;
}

/** A window of the current key and the id its contents are stored under. */
interface Slot {
  readonly window: TimeWindow;
  readonly stateId: string;
}

/** A session in state: start, end, state id. */
type StoredSession = readonly [number, number, string];

export const checkAllowedLateness = (ms: unknown): number => {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
    throw new InvalidArgumentError(
      `allowedLateness must be a non-negative integer number of milliseconds, got ${String(ms)}`,
    );
  }
  return ms;
};

/** Window operator of one keyed subtask; see the module comment for semantics and state. */
export class WindowOperator<K extends Key, IN, ACC, OUT> implements StreamOperator<IN, OUT> {
  private ctx!: OperatorContext;
  private out!: Output<OUT>;
  private timers!: KeyedTimers;
  private contents!: Contents;
  private contentsState!: MapState<string, unknown>;
  private sessions: ValueState<readonly StoredSession[]> | undefined;
  private seq: ValueState<number> | undefined;
  private dropped!: Counter;

  private readonly assigner: WindowAssigner;
  private readonly eventTime: boolean;
  private readonly lateness: number;
  /**
   * Event-time sessions without allowed lateness re-arm timers lazily: extending a session
   * does not move its timer; the timer left at (or before) the old end re-registers the
   * session's current end when it fires. Extending a session is the per-record case, and
   * moving the timer each time (delete, register, a stale heap entry) was a third of the
   * operator's cost. Invariant: every live session has a pending timer at or before its end.
   */
  private readonly lazyTimers: boolean;
  private readonly windowFn: ProcessWindowFunction<unknown, OUT, K> | undefined;
  /** 1-based position of the record being processed; undefined while timers fire. */
  private position: number | undefined;
  private received = 0;
  /** The user code running now (for error attribution); undefined in the operator's own code. */
  private stage: string | undefined;

  constructor(private readonly options: WindowOperatorOptions<K, IN, ACC, OUT>) {
    const { assigner, function: fn } = options;
    this.assigner = assigner;
    this.eventTime = assigner.timeDomain === 'event';
    this.lateness = checkAllowedLateness(options.allowedLateness ?? 0);
    this.lazyTimers = this.assigner.isMerging && this.eventTime && this.lateness === 0;
    if (this.eventTime && typeof options.timestampOf !== 'function') {
      throw new InvalidArgumentError(
        `${assigner} needs record timestamps: give the source a WatermarkStrategy or call assignTimestamps before keyBy`,
      );
    }
    if (!this.eventTime && this.lateness > 0) {
      throw new InvalidArgumentError(
        `allowedLateness applies to event-time windows only; ${assigner} is a processing-time assigner`,
      );
    }
    if (assigner.isMerging && fn.kind === 'aggregate' && typeof fn.aggregate.merge !== 'function') {
      throw new InvalidArgumentError(
        `${assigner} merges windows: the AggregateFunction needs a merge(a, b) method`,
      );
    }
    this.windowFn =
      fn.kind === 'process'
        ? (fn.process as ProcessWindowFunction<unknown, OUT, K>)
        : (fn.window as ProcessWindowFunction<unknown, OUT, K> | undefined);
  }

  async open(ctx: OperatorContext, output: Output<OUT>): Promise<void> {
    this.ctx = ctx;
    this.out = output;
    const backend = ctx.keyedState;
    if (!backend) throw new Error('window operator without a keyed state backend');
    this.dropped = ctx.metrics.counter('lateRecordsDropped');
    this.contentsState = backend.getState(
      new MapStateDescriptor<string, unknown>(WINDOW_CONTENTS_STATE),
    );
    const merging = this.assigner.isMerging;
    if (merging) {
      this.sessions = backend.getState(
        new ValueStateDescriptor<readonly StoredSession[]>(WINDOW_SESSIONS_STATE),
      );
    }
    const fn = this.options.function;
    if (fn.kind === 'process') {
      if (merging) this.seq = backend.getState(new ValueStateDescriptor<number>(WINDOW_SEQ_STATE));
      const elements = backend.getState(
        new MapStateDescriptor<string, unknown>(WINDOW_ELEMENTS_STATE),
      );
      this.contents = new ListContents(this.contentsState, elements, this.seq);
    } else if (fn.kind === 'reduce') {
      this.contents = new ReduceContents(this.contentsState, this.userCall('window reduce'), fn);
    } else {
      this.contents = new AggregateContents(
        this.contentsState,
        this.userCall('window aggregate'),
        fn.aggregate,
      );
    }
    this.timers = new KeyedTimers({
      backend,
      maxParallelism: ctx.maxParallelism,
      clock: ctx.clock,
      runInMailbox: ctx.runInMailbox,
      onTimer: (domain, timestamp, key) => this.onTimer(domain, timestamp, key as K),
    });
    this.timers.open();
    const windowFn = this.windowFn;
    const open = windowFn?.open;
    if (open) {
      await callHook(ctx.subtask, 'open', () => open.call(windowFn, runtimeContext(ctx)));
    }
  }

  processRecord(record: IN): void {
    this.position = ++this.received;
    try {
      this.stage = 'window key selector';
      const key = this.options.keySelector(record);
      this.stage = undefined;
      this.timers.setCurrentKey(key);
      const timestamp = this.timestampOf(record);
      const windows = this.assigner.assignWindows(timestamp);
      const inWindow = this.assigner.isMerging
        ? this.addToSessions(key, record, windows)
        : this.addToWindows(key, record, windows);
      // Flink's isSkippedElement && isElementLate: a record in no window only because sliding
      // windows leave gaps (size < slide) is not late, just in no window.
      if (!inWindow && this.isLateRecord(timestamp)) this.late(record);
    } catch (e) {
      throw this.failure(e);
    }
  }

  processWatermark(timestamp: number): void {
    this.timers.advanceWatermark(timestamp);
    this.out.emitWatermark(timestamp);
  }

  async close(): Promise<void> {
    this.timers?.close();
    const windowFn = this.windowFn;
    const close = windowFn?.close;
    if (close && this.ctx) {
      await callHook(this.ctx.subtask, 'close', () => close.call(windowFn));
    }
  }

  private timestampOf(record: IN): number {
    if (!this.eventTime) return this.timers.currentProcessingTime();
    this.stage = 'window timestamp assigner';
    const ts = this.options.timestampOf!(record);
    if (typeof ts !== 'number' || !Number.isFinite(ts)) {
      throw new TypeError(
        `the timestamp assigner returned ${String(ts)}; event-time windows need a finite number of milliseconds`,
      );
    }
    this.stage = undefined;
    return ts;
  }

  /** Non-merging windows: adds the record to each of its windows not past cleanup. */
  private addToWindows(key: K, record: IN, windows: TimeWindow[]): boolean {
    if (windows.length > 1) windows.sort(compareWindows);
    let added = false;
    for (const window of windows) {
      if (this.isLate(window)) continue;
      added = true;
      const id = windowId(window);
      this.contents.add(id, record);
      this.afterAdd(key, { window, stateId: id });
    }
    return added;
  }

  /** Merging windows: merges the record's window into the key's sessions, then adds it. */
  private addToSessions(key: K, record: IN, windows: TimeWindow[]): boolean {
    if (windows.length === 1) {
      const added = this.addToOnlySession(key, record, windows[0]!);
      if (added !== undefined) return added;
    }
    let added = false;
    for (const window of windows) {
      const slots = this.loadSessions();
      const { result, merged } = addWindow(
        slots.map((s) => s.window),
        window,
      );
      // Only possible when nothing merged (live sessions are never past cleanup).
      if (this.isLate(result)) continue;
      added = true;
      const involved = slots.filter((s) => merged.includes(s.window));
      let stateId: string;
      if (involved.length === 0) {
        stateId = windowId(result);
        while (slots.some((s) => s.stateId === stateId)) stateId += "'";
      } else {
        stateId = involved[0]!.stateId;
        if (involved.length > 1) {
          this.contents.merge(
            stateId,
            involved.slice(1).map((s) => s.stateId),
          );
        }
      }
      const next = slots.filter((s) => !involved.includes(s));
      next.push({ window: result, stateId });
      next.sort((a, b) => a.window.start - b.window.start);
      this.deleteTimersOf(
        involved.filter((s) => !s.window.equals(result)),
        next,
      );
      this.saveSessions(next);
      this.contents.add(stateId, record);
      this.afterAdd(key, { window: result, stateId });
    }
    return added;
  }

  /**
   * The common case of sessions, without the general merge bookkeeping: the key has no session
   * yet, or one that the record's window extends (or falls in). Does exactly what the general
   * path does in those cases; undefined when it does not apply (two or more sessions, or one
   * the window does not touch).
   */
  private addToOnlySession(key: K, record: IN, window: TimeWindow): boolean | undefined {
    const sessions = this.sessions!;
    const stored = sessions.value();
    if (stored !== undefined && stored.length > 1) return undefined;
    const only = stored?.[0];
    if (only === undefined) {
      if (this.isLate(window)) return false;
      const stateId = windowId(window);
      sessions.update([[window.start, window.end, stateId]]);
      this.contents.add(stateId, record);
      this.afterAdd(key, { window, stateId });
      return true;
    }
    const [start, end, stateId] = only;
    const old = new TimeWindow(start, end);
    if (!window.intersects(old)) return undefined;
    // A live session is never past cleanup, and covering it only moves cleanup later.
    const result = old.cover(window);
    const slot = { window: result, stateId };
    if (!result.equals(old)) {
      sessions.update([[result.start, result.end, stateId]]);
      if (!this.lazyTimers) this.deleteTimersOf([{ window: old, stateId }], [slot]);
    }
    this.contents.add(stateId, record);
    // Lazy: the session's pending timer re-arms itself (onTimer); it cannot be due yet, as the
    // record's window, inside the session, is not late.
    if (!this.lazyTimers) this.afterAdd(key, slot);
    return true;
  }

  /** The event-time trigger's onElement: fire now if the watermark passed, else a timer. */
  private afterAdd(key: K, slot: Slot): void {
    const max = slot.window.maxTimestamp;
    if (this.eventTime && max <= this.timers.currentWatermark()) this.fire(key, slot);
    else this.registerTimer(max);
    const cleanup = this.cleanupTime(slot.window);
    // Without lateness the cleanup timer is the firing timer: skip the second lookup.
    if (cleanup !== max) this.registerTimer(cleanup);
  }

  private late(record: IN): void {
    const tag = this.options.lateDataTag;
    if (tag !== undefined) this.out.collectSide(tag.id, record);
    else this.dropped.inc();
  }

  /** Event time: the watermark passed the record's time plus the allowed lateness. */
  private isLateRecord(timestamp: number): boolean {
    return this.eventTime && timestamp + this.lateness <= this.timers.currentWatermark();
  }

  /** Past its cleanup time: the window has fired and been cleared (or would have). */
  private isLate(window: TimeWindow): boolean {
    return this.eventTime && this.cleanupTime(window) <= this.timers.currentWatermark();
  }

  private cleanupTime(window: TimeWindow): number {
    return this.eventTime ? window.maxTimestamp + this.lateness : window.maxTimestamp;
  }

  private registerTimer(timestamp: number): void {
    if (this.eventTime) this.timers.registerEventTimeTimer(timestamp);
    else this.timers.registerProcessingTimeTimer(timestamp);
  }

  /**
   * Deletes the timers of windows merged away, except those a remaining window needs (timers
   * are per key and timestamp, not per window).
   */
  private deleteTimersOf(gone: readonly Slot[], remaining: readonly Slot[]): void {
    if (gone.length === 0) return;
    const needed = new Set<number>();
    for (const s of remaining) {
      needed.add(s.window.maxTimestamp);
      needed.add(this.cleanupTime(s.window));
    }
    for (const s of gone) {
      for (const t of [s.window.maxTimestamp, this.cleanupTime(s.window)]) {
        if (needed.has(t)) continue;
        needed.add(t);
        if (this.eventTime) this.timers.deleteEventTimeTimer(t);
        else this.timers.deleteProcessingTimeTimer(t);
      }
    }
  }

  private onTimer(domain: TimeDomain, timestamp: number, key: K): void {
    if (domain !== this.assigner.timeDomain) return;
    this.position = undefined;
    try {
      const slots = this.slotsOfKey();
      const firing = slots.filter((s) => s.window.maxTimestamp === timestamp);
      firing.sort((a, b) => compareWindows(a.window, b.window));
      for (const slot of firing) this.fire(key, slot);
      for (const slot of slots) {
        if (this.cleanupTime(slot.window) === timestamp) this.clearWindow(slot);
      }
      if (this.lazyTimers) {
        // Re-arm: sessions extended since their timer was set end later than it.
        for (const slot of slots) {
          if (slot.window.maxTimestamp > timestamp) this.registerTimer(slot.window.maxTimestamp);
        }
      }
    } catch (e) {
      throw this.failure(e);
    }
  }

  /** The current key's windows. */
  private slotsOfKey(): Slot[] {
    if (this.assigner.isMerging) return this.loadSessions();
    const slots: Slot[] = [];
    for (const id of this.contentsState.keys()) {
      slots.push({ window: parseWindowId(id), stateId: id });
    }
    return slots;
  }

  private fire(key: K, slot: Slot): void {
    // Flink: a window's results carry its maxTimestamp (read downstream as carried time).
    recordTime.value = slot.window.maxTimestamp;
    this.contents.emit(slot.stateId, (value, many) => {
      const windowFn = this.windowFn;
      if (windowFn === undefined) {
        this.out.collect(value as OUT);
        return;
      }
      const context: ProcessWindowContext = {
        window: slot.window,
        currentWatermark: this.timers.currentWatermark(),
        currentProcessingTime: this.timers.currentProcessingTime(),
        output: (tag, v) => this.out.collectSide(tag.id, v),
      };
      const elements = many ? (value as readonly unknown[]) : [value];
      this.stage = 'window process';
      windowFn.process(key, context, elements, this.out);
      this.stage = undefined;
    });
  }

  private clearWindow(slot: Slot): void {
    this.contents.clear(slot.stateId);
    const sessions = this.sessions;
    if (sessions === undefined) return;
    const rest = this.loadSessions().filter((s) => s.stateId !== slot.stateId);
    if (rest.length > 0) {
      this.saveSessions(rest);
    } else {
      sessions.clear();
      this.seq?.clear();
    }
  }

  private loadSessions(): Slot[] {
    const stored = this.sessions!.value() ?? [];
    return stored.map(([start, end, stateId]) => ({
      window: new TimeWindow(start, end),
      stateId,
    }));
  }

  private saveSessions(slots: readonly Slot[]): void {
    this.sessions!.update(slots.map((s) => [s.window.start, s.window.end, s.stateId] as const));
  }

  /** Calls into user code labelled `what` (for error attribution). */
  private userCall(what: string): <R>(fn: () => R) => R {
    return (fn) => {
      this.stage = what;
      const r = fn();
      this.stage = undefined;
      return r;
    };
  }

  private failure(e: unknown): unknown {
    const stage = this.stage;
    this.stage = undefined;
    return stage === undefined ? e : userFailure(this.ctx.subtask, stage, this.position, e);
  }
}
