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
 * - `__eddy.window.sessionset` (value, merging with reduce or aggregate): the key's sessions
 *   and their accumulators in one entry, a flat array `[start0, end0, acc0, start1, end1, acc1,
 *   …]` ascending by start, replaced (never mutated: snapshots hold it by reference) when it
 *   changes. One read and one write per record, where the layout below took five or six state
 *   accesses; see {@link PackedSessions}. Checkpoints of the older layout are converted on open.
 * - `__eddy.window.sessions` (value, merging process only): the key's session windows, each
 *   with the id its contents are stored under (Flink's "state window"): when a session grows,
 *   its contents stay where they are; only an event bridging two sessions moves contents.
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
import type { AggregateFunction, MapState, NormalizedKey, ValueState } from '../../state/types.js';
import type { ReduceFunction } from '../functions.js';
import type { Counter } from '../io.js';
import type { OperatorContext, Output, StreamOperator } from '../operator.js';
import { callHook, type KeyGroupAware, runtimeContext, userFailure } from '../operators/base.js';
import { recordTime } from '../record-time.js';
import type { OutputTag, TimeDomain } from '../time.js';
import { KeyedTimers } from '../timers.js';
import { compareWindows, sessionGapOf, TimeWindow, type WindowAssigner } from './assigners.js';
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
/** Merging windows with reduce or aggregate: the key's sessions and accumulators in one entry. */
export const WINDOW_SESSION_SET_STATE = '__eddy.window.sessionset';

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

/**
 * The value of `__eddy.window.sessionset`: `[start, end, acc]` per session, ascending by start,
 * pairwise non-intersecting (as {@link addWindow} keeps them). Never empty (no sessions: no
 * entry). Treated as immutable: a checkpoint's snapshot view may hold it.
 */
type PackedSessions = readonly unknown[];

/** Reduce or aggregate as the three steps sessions need, over an opaque accumulator. */
interface Incremental {
  /** The accumulator of a new session holding `value`. */
  create(value: unknown): unknown;
  add(acc: unknown, value: unknown): unknown;
  merge(a: unknown, b: unknown): unknown;
  /** What the session emits when it fires. */
  result(acc: unknown): unknown;
}

export const checkAllowedLateness = (ms: unknown): number => {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
    throw new InvalidArgumentError(
      `allowedLateness must be a non-negative integer number of milliseconds, got ${String(ms)}`,
    );
  }
  return ms;
};

/** Window operator of one keyed subtask; see the module comment for semantics and state. */
export class WindowOperator<K extends Key, IN, ACC, OUT>
  implements StreamOperator<IN, OUT>, KeyGroupAware<IN>
{
  private ctx!: OperatorContext;
  private out!: Output<OUT>;
  private timers!: KeyedTimers;
  private contents!: Contents;
  private contentsState!: MapState<string, unknown>;
  private sessions: ValueState<readonly StoredSession[]> | undefined;
  /** Merging windows with reduce or aggregate (see the module comment); else undefined. */
  private packed: ValueState<PackedSessions> | undefined;
  private incremental: Incremental | undefined;
  private seq: ValueState<number> | undefined;
  private dropped!: Counter;
  /** The process window context's side output, made once (a closure per firing otherwise). */
  private sideOutput!: ProcessWindowContext['output'];

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
  /** eddy's session assigners: the window of a record at t is [t, t + gap), no array needed. */
  private readonly sessionGap: number | undefined;
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
    this.sessionGap = assigner.isMerging ? sessionGapOf(assigner) : undefined;
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
    this.sideOutput = (tag, v) => output.collectSide(tag.id, v);
    const backend = ctx.keyedState;
    if (!backend) throw new Error('window operator without a keyed state backend');
    this.dropped = ctx.metrics.counter('lateRecordsDropped');
    this.contentsState = backend.getState(
      new MapStateDescriptor<string, unknown>(WINDOW_CONTENTS_STATE),
    );
    const merging = this.assigner.isMerging;
    const fn = this.options.function;
    if (merging && fn.kind !== 'process') {
      this.packed = backend.getState(
        new ValueStateDescriptor<PackedSessions>(WINDOW_SESSION_SET_STATE),
      );
      this.incremental = this.incrementalOf(fn);
      this.convertLegacySessions(backend);
    } else if (merging) {
      this.sessions = backend.getState(
        new ValueStateDescriptor<readonly StoredSession[]>(WINDOW_SESSIONS_STATE),
      );
    }
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
    this.process(record, -1);
  }

  /** A record whose key group the hash exchange carried (see `KeyGroupAware`). */
  processRecordInGroup(record: IN, keyGroup: number): void {
    this.process(record, keyGroup);
  }

  /** `keyGroup` < 0: not carried, computed from the key. */
  private process(record: IN, keyGroup: number): void {
    this.position = ++this.received;
    try {
      this.stage = 'window key selector';
      const key = this.options.keySelector(record);
      this.stage = undefined;
      if (keyGroup < 0) this.timers.setCurrentKey(key);
      else this.timers.setCurrentKey(key, keyGroup);
      const timestamp = this.timestampOf(record);
      let inWindow: boolean;
      if (this.packed !== undefined && this.sessionGap !== undefined) {
        inWindow = this.addPacked(key, record, timestamp, timestamp + this.sessionGap, true);
      } else {
        const windows = this.assigner.assignWindows(timestamp);
        if (this.packed !== undefined) {
          inWindow = false;
          const fast = windows.length === 1;
          for (const w of windows) {
            if (this.addPacked(key, record, w.start, w.end, fast)) inWindow = true;
          }
        } else if (this.assigner.isMerging) {
          inWindow = this.addToSessions(key, record, windows);
        } else {
          inWindow = this.addToWindows(key, record, windows);
        }
      }
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

  /**
   * Merging windows with reduce or aggregate: adds the record's window `[start, end)` to the
   * key's sessions in `__eddy.window.sessionset`, with exactly the merges, accumulator calls
   * and timer calls of {@link addToSessions} (and, when `fast`, of {@link addToOnlySession}),
   * so results and their order do not change. False if the window is late.
   */
  private addPacked(key: K, record: IN, start: number, end: number, fast: boolean): boolean {
    const state = this.packed!;
    const stored = state.value();
    if (stored === undefined) {
      if (this.isLateEnd(end)) return false;
      const acc = this.incremental!.create(record);
      state.update([start, end, acc]);
      this.afterAddPacked(key, start, end, acc);
      return true;
    }
    if (fast && stored.length === 3) {
      const s = stored[0] as number;
      const e = stored[1] as number;
      // TimeWindow.intersects, closed on both ends.
      if (start <= e && end >= s) {
        // A live session is never past cleanup, and covering it only moves cleanup later.
        const rs = start < s ? start : s;
        const re = end > e ? end : e;
        const acc = this.incremental!.add(stored[2], record);
        state.update([rs, re, acc]);
        if (!this.lazyTimers) {
          if (rs !== s || re !== e) {
            const result = new TimeWindow(rs, re);
            this.deleteTimersOf(
              [{ window: new TimeWindow(s, e), stateId: '' }],
              [{ window: result, stateId: '' }],
            );
          }
          this.afterAddPacked(key, rs, re, acc);
        }
        return true;
      }
    }
    return this.addPackedMerging(key, record, start, end, stored);
  }

  /** {@link addPacked} when the window may merge with any of several sessions (rare). */
  private addPackedMerging(
    key: K,
    record: IN,
    start: number,
    end: number,
    stored: PackedSessions,
  ): boolean {
    const count = stored.length / 3;
    const involved: boolean[] = new Array<boolean>(count).fill(false);
    let rs = start;
    let re = end;
    let any = false;
    // addWindow's fixpoint: merge every session the growing result intersects.
    for (let grew = true; grew; ) {
      grew = false;
      for (let i = 0; i < count; i++) {
        if (involved[i]) continue;
        const s = stored[3 * i] as number;
        const e = stored[3 * i + 1] as number;
        if (rs <= e && re >= s) {
          rs = Math.min(rs, s);
          re = Math.max(re, e);
          involved[i] = true;
          grew = true;
          any = true;
        }
      }
    }
    // Only possible when nothing merged (live sessions are never past cleanup).
    if (this.isLateEnd(re)) return false;
    const incremental = this.incremental!;
    // Contents merge into the earliest involved session's, the others folded in start order.
    let acc: unknown;
    let first = true;
    for (let i = 0; i < count; i++) {
      if (!involved[i]) continue;
      acc = first ? stored[3 * i + 2] : incremental.merge(acc, stored[3 * i + 2]);
      first = false;
    }
    const result = new TimeWindow(rs, re);
    const gone: Slot[] = [];
    const next: Array<{ start: number; end: number; acc: unknown }> = [];
    for (let i = 0; i < count; i++) {
      const s = stored[3 * i] as number;
      const e = stored[3 * i + 1] as number;
      if (!involved[i]) next.push({ start: s, end: e, acc: stored[3 * i + 2] });
      else if (s !== rs || e !== re) gone.push({ window: new TimeWindow(s, e), stateId: '' });
    }
    const merged = { start: rs, end: re, acc };
    next.push(merged);
    next.sort((a, b) => a.start - b.start);
    this.deleteTimersOf(
      gone,
      next.map((n) => ({ window: new TimeWindow(n.start, n.end), stateId: '' })),
    );
    merged.acc = any ? incremental.add(acc, record) : incremental.create(record);
    const packed: unknown[] = [];
    for (const n of next) packed.push(n.start, n.end, n.acc);
    this.packed!.update(packed);
    this.afterAddPacked(key, result.start, result.end, merged.acc);
    return true;
  }

  /** {@link afterAdd} for a packed session holding `acc`. */
  private afterAddPacked(key: K, start: number, end: number, acc: unknown): void {
    const max = end - 1;
    if (this.eventTime && max <= this.timers.currentWatermark()) {
      this.firePacked(key, start, end, acc);
    } else {
      this.registerTimer(max);
    }
    const cleanup = this.eventTime ? max + this.lateness : max;
    if (cleanup !== max) this.registerTimer(cleanup);
  }

  /** {@link onTimer} for packed sessions: fire, clear and re-arm, then one write at most. */
  private onTimerPacked(timestamp: number, key: K): void {
    const state = this.packed!;
    const stored = state.value();
    if (stored === undefined) return;
    const n = stored.length;
    // Firing windows share their end, so start order (the stored order) is compareWindows'.
    for (let i = 0; i < n; i += 3) {
      if ((stored[i + 1] as number) - 1 === timestamp) {
        this.firePacked(key, stored[i] as number, stored[i + 1] as number, stored[i + 2]);
      }
    }
    const lateness = this.eventTime ? this.lateness : 0;
    let kept = 0;
    for (let i = 0; i < n; i += 3) {
      if ((stored[i + 1] as number) - 1 + lateness !== timestamp) kept += 3;
    }
    if (kept === 0) {
      state.clear();
    } else if (kept < n) {
      const rest: unknown[] = [];
      for (let i = 0; i < n; i += 3) {
        if ((stored[i + 1] as number) - 1 + lateness !== timestamp) {
          rest.push(stored[i], stored[i + 1], stored[i + 2]);
        }
      }
      state.update(rest);
    }
    if (this.lazyTimers) {
      // Re-arm: sessions extended since their timer was set end later than it.
      for (let i = 0; i < n; i += 3) {
        const max = (stored[i + 1] as number) - 1;
        if (max > timestamp) this.registerTimer(max);
      }
    }
  }

  private firePacked(key: K, start: number, end: number, acc: unknown): void {
    recordTime.value = end - 1;
    this.emitResult(key, start, end, this.incremental!.result(acc), false);
  }

  /**
   * Converts window state of the layout before `__eddy.window.sessionset` (sessions in
   * `__eddy.window.sessions`, accumulators in `__eddy.window.contents` under their state ids),
   * restored from an older checkpoint, key by key. Timers need no change (they name no
   * window). Runs in open, where the timers decode every restored key group anyway.
   */
  private convertLegacySessions(backend: NonNullable<OperatorContext['keyedState']>): void {
    const keys: Array<readonly [NormalizedKey, number]> = [];
    backend.forEachEntry(WINDOW_SESSIONS_STATE, (_value, key, keyGroup) => {
      keys.push([key, keyGroup]);
    });
    if (keys.length === 0) return;
    const legacy = backend.getState(
      new ValueStateDescriptor<readonly StoredSession[]>(WINDOW_SESSIONS_STATE),
    );
    const contents = this.contentsState;
    for (const [key, keyGroup] of keys) {
      backend.setCurrentKey(key, keyGroup);
      const packed: unknown[] = [];
      for (const [start, end, stateId] of legacy.value() ?? []) {
        // Every session has contents; one without would have emitted nothing.
        if (!contents.has(stateId)) continue;
        packed.push(start, end, contents.get(stateId));
        contents.delete(stateId);
      }
      legacy.clear();
      if (packed.length > 0) this.packed!.update(packed);
    }
  }

  /** Reduce or aggregate as {@link Incremental}, with user calls labelled as the contents do. */
  private incrementalOf(
    fn: Exclude<WindowFunctionSpec<IN, ACC, OUT, K>, { kind: 'process' }>,
  ): Incremental {
    if (fn.kind === 'reduce') {
      const reduce = fn.reduce as ReduceFunction<unknown>;
      return {
        create: (value) => value,
        add: (acc, value) => {
          this.stage = 'window reduce';
          const r = reduce(acc, value);
          this.stage = undefined;
          return r;
        },
        merge: (a, b) => {
          this.stage = 'window reduce';
          const r = reduce(a, b);
          this.stage = undefined;
          return r;
        },
        result: (acc) => acc,
      };
    }
    const agg = fn.aggregate as AggregateFunction<unknown, unknown, unknown>;
    return {
      create: (value) => {
        this.stage = 'window aggregate';
        const r = agg.add(value, agg.createAccumulator());
        this.stage = undefined;
        return r;
      },
      add: (acc, value) => {
        this.stage = 'window aggregate';
        const r = agg.add(value, acc);
        this.stage = undefined;
        return r;
      },
      merge: (a, b) => {
        this.stage = 'window aggregate';
        const r = agg.merge!(a, b);
        this.stage = undefined;
        return r;
      },
      result: (acc) => {
        this.stage = 'window aggregate';
        const r = agg.getResult(acc);
        this.stage = undefined;
        return r;
      },
    };
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

  /** {@link isLate} of a window ending (exclusive) at `end`. */
  private isLateEnd(end: number): boolean {
    return this.eventTime && end - 1 + this.lateness <= this.timers.currentWatermark();
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
      if (this.packed !== undefined) {
        this.onTimerPacked(timestamp, key);
        return;
      }
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
      this.emitResult(key, slot.window.start, slot.window.end, value, many, slot.window);
    });
  }

  /** Emits a firing window's result: as is, or through the process window function. */
  private emitResult(
    key: K,
    start: number,
    end: number,
    value: unknown,
    many: boolean,
    window?: TimeWindow,
  ): void {
    const windowFn = this.windowFn;
    if (windowFn === undefined) {
      this.out.collect(value as OUT);
      return;
    }
    const context: ProcessWindowContext = {
      window: window ?? new TimeWindow(start, end),
      currentWatermark: this.timers.currentWatermark(),
      currentProcessingTime: this.timers.currentProcessingTime(),
      output: this.sideOutput,
    };
    const elements = many ? (value as readonly unknown[]) : [value];
    this.stage = 'window process';
    windowFn.process(key, context, elements, this.out);
    this.stage = undefined;
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
