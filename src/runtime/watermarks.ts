/**
 * Watermark generation at sources: watermark strategies (how event time is read from a record
 * and how far the watermark trails it) and per-split watermark tracking for one source
 * subtask. Pure: the clock is injected, nothing here does I/O.
 *
 * A source subtask may read several splits (files, partitions) at once, each roughly in event
 * time order but not in step with the others. Taking one watermark over all of its records
 * would let a split that is ahead make the records of a split that is behind late; so each
 * split has its own watermark, and the subtask's watermark is the minimum over the splits
 * that still matter (unfinished and not idle). This is Flink's per-split watermarking
 * (`SourceOperator` with split-local `WatermarkOutput`s).
 *
 * Rules of {@link SourceWatermarks} (each is tested in watermarks.test.ts):
 *
 * 1. A split's watermark is `MIN_WATERMARK` until its first record; then it is the largest
 *    timestamp seen in the split minus `outOfOrdernessMs` minus 1 (`monotonous`: minus 1).
 *    So a record with the largest timestamp so far is never late by its own split's watermark.
 * 2. A split's watermark never decreases: an older record does not move it back.
 * 3. With an idle timeout, a split that had no record for `idleTimeoutMs` of processing time
 *    (measured from its last record, or from `add()` when it had none yet; idle when
 *    `now - last >= idleTimeoutMs`) is idle: it does not hold the watermark back until its
 *    next record makes it active again.
 * 4. A finished split is left out of the minimum for good.
 * 5. The combined watermark is the minimum over unfinished, active splits, but it never
 *    decreases: when that minimum would go down (an idle split becomes active again with an
 *    older watermark), the combined value stays where it was until the minimum passes it.
 * 6. `idle` is true iff some split is unfinished and none of those is active (all idle);
 *    `watermark` is then the last combined value. A subtask whose splits are all finished is
 *    NOT idle: it holds its last watermark until the reader ends and sends MAX_WATERMARK —
 *    reported idle, downstream would leave it out and fire windows its last records still
 *    feed (found by the top-items e2e test at p=2).
 * 7. A timestamp that is not a finite number fails with an `EDDY_USER_FUNCTION` EddyError
 *    saying what the timestamp assigner returned.
 * 8. A reader that never calls `add()` has one implicit split, present from construction (so
 *    it holds the watermark at `MIN_WATERMARK` until its first record); its records come with
 *    an undefined handle. Mixing the two (a handle-less record after `add()`, or `add()` after
 *    a handle-less record), an unknown handle, a record for a finished split, finishing a split
 *    twice, or declaring the same split id twice are reader bugs: `InternalError`.
 */
import { EddyError, InternalError, InvalidArgumentError } from '../core/errors.js';
import { MAX_WATERMARK, MIN_WATERMARK } from './time.js';

/**
 * How a source derives event time and watermarks. Build one with {@link WatermarkStrategy}:
 * a strategy always has a timestamp assigner (the builder without one is a different type).
 *
 * @example
 * const strategy = WatermarkStrategy.forBoundedOutOfOrderness<Event>(5_000)
 *   .withTimestampAssigner((e) => e.ts)
 *   .withIdleness(60_000);
 */
export interface WatermarkStrategy<T> {
  /** Event time of a record (epoch ms). */
  readonly timestampOf: (record: T) => number;
  /**
   * 'bounded': watermark = max timestamp seen - outOfOrdernessMs - 1; 'monotonous': the same
   * with outOfOrdernessMs 0 (timestamps never go down within a split).
   */
  readonly kind: 'bounded' | 'monotonous';
  readonly outOfOrdernessMs: number;
  /**
   * A split with no record for this long (processing time) is idle and does not hold the
   * watermark back; undefined = never idle.
   */
  readonly idleTimeoutMs: number | undefined;
  /** A copy of this strategy with the given idle timeout (a positive integer of ms). */
  withIdleness(idleTimeoutMs: number): WatermarkStrategy<T>;
}

/**
 * A watermark strategy still missing its timestamp assigner. Not a {@link WatermarkStrategy}:
 * a source cannot be given one until `withTimestampAssigner` is called.
 */
export interface WatermarkStrategyBuilder<T> {
  readonly kind: 'bounded' | 'monotonous';
  readonly outOfOrdernessMs: number;
  readonly idleTimeoutMs: number | undefined;
  /** The strategy, reading each record's event time (epoch ms) with `timestampOf`. */
  withTimestampAssigner(timestampOf: (record: T) => number): WatermarkStrategy<T>;
  /** A copy of this builder with the given idle timeout (a positive integer of ms). */
  withIdleness(idleTimeoutMs: number): WatermarkStrategyBuilder<T>;
}

type Kind = WatermarkStrategy<unknown>['kind'];

/** A short, safe description of any value for error messages. */
const describeValue = (v: unknown): string => {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n (a bigint)`;
  if (typeof v === 'function') return 'a function';
  if (v === null || typeof v !== 'object') return String(v);
  if (v instanceof Date)
    return `a Date (${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  return Array.isArray(v) ? 'an array' : 'an object';
};

const checkMs = (where: string, name: string, value: unknown, min: 0 | 1): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const what = min === 0 ? 'a non-negative integer' : 'a positive integer';
    throw new InvalidArgumentError(
      `${where}: ${name} must be ${what} of milliseconds, got ${describeValue(value)}`,
    );
  }
  return value;
};

/**
 * Idle timeouts must be positive: with 0 every split would be idle at once, so the watermark
 * could never advance.
 */
const checkIdleness = (value: unknown): number =>
  checkMs('WatermarkStrategy.withIdleness', 'idleTimeoutMs', value, 1);

const strategy = <T>(
  kind: Kind,
  outOfOrdernessMs: number,
  idleTimeoutMs: number | undefined,
  timestampOf: (record: T) => number,
): WatermarkStrategy<T> =>
  Object.freeze({
    timestampOf,
    kind,
    outOfOrdernessMs,
    idleTimeoutMs,
    withIdleness: (ms: number) => strategy(kind, outOfOrdernessMs, checkIdleness(ms), timestampOf),
  });

const builder = <T>(
  kind: Kind,
  outOfOrdernessMs: number,
  idleTimeoutMs: number | undefined,
): WatermarkStrategyBuilder<T> =>
  Object.freeze({
    kind,
    outOfOrdernessMs,
    idleTimeoutMs,
    withTimestampAssigner: (timestampOf: (record: T) => number) => {
      if (typeof timestampOf !== 'function') {
        throw new InvalidArgumentError(
          `WatermarkStrategy.withTimestampAssigner: timestampOf must be a function (record) => epoch ms, got ${describeValue(timestampOf)}`,
        );
      }
      return strategy(kind, outOfOrdernessMs, idleTimeoutMs, timestampOf);
    },
    withIdleness: (ms: number) => builder<T>(kind, outOfOrdernessMs, checkIdleness(ms)),
  });

/**
 * Factories of watermark strategies. Each returns a builder; `withTimestampAssigner` makes it
 * a {@link WatermarkStrategy}. All results are immutable: `withIdleness` returns a new object.
 *
 * @example
 * WatermarkStrategy.forBoundedOutOfOrderness<Click>(2_000).withTimestampAssigner((c) => c.at);
 * WatermarkStrategy.forMonotonousTimestamps<Tick>().withTimestampAssigner((t) => t.ts).withIdleness(30_000);
 */
export const WatermarkStrategy = {
  /** Records may arrive up to `maxOutOfOrdernessMs` behind the largest timestamp seen. */
  forBoundedOutOfOrderness<T>(maxOutOfOrdernessMs: number): WatermarkStrategyBuilder<T> {
    const where = 'WatermarkStrategy.forBoundedOutOfOrderness';
    return builder<T>(
      'bounded',
      checkMs(where, 'maxOutOfOrdernessMs', maxOutOfOrdernessMs, 0),
      undefined,
    );
  },
  /** Timestamps never decrease within a split. */
  forMonotonousTimestamps<T>(): WatermarkStrategyBuilder<T> {
    return builder<T>('monotonous', 0, undefined);
  },
};

/** What {@link SourceWatermarks} needs of a strategy (any `WatermarkStrategy<T>` fits). */
export type WatermarkTiming = Pick<
  WatermarkStrategy<unknown>,
  'kind' | 'outOfOrdernessMs' | 'idleTimeoutMs'
>;

/** The combined watermark of a source subtask; see {@link SourceWatermarks.current}. */
export interface SourceWatermark {
  readonly watermark: number;
  readonly idle: boolean;
}

const IMPLICIT_SPLIT = '(implicit split)';

/** Checks a strategy that may have been built by hand rather than by the factories. */
const checkTiming = (s: WatermarkTiming): void => {
  const where = 'SourceWatermarks';
  if (s.kind !== 'bounded' && s.kind !== 'monotonous') {
    throw new InvalidArgumentError(
      `${where}: kind must be 'bounded' or 'monotonous', got ${describeValue(s.kind)}`,
    );
  }
  checkMs(where, 'outOfOrdernessMs', s.outOfOrdernessMs, 0);
  if (s.kind === 'monotonous' && s.outOfOrdernessMs !== 0) {
    throw new InvalidArgumentError(
      `${where}: a 'monotonous' strategy has outOfOrdernessMs 0, got ${s.outOfOrdernessMs}`,
    );
  }
  if (s.idleTimeoutMs !== undefined) checkMs(where, 'idleTimeoutMs', s.idleTimeoutMs, 1);
};

/**
 * Per-split watermarks of one source subtask and their combination; the rules are in this
 * module's header. Splits live in parallel arrays indexed by handle, so `onRecord` is O(1)
 * and allocates nothing, and `current()` is one pass over the splits. The clock is read on
 * the hot path only when an idle timeout is set.
 *
 * @example
 * const wm = new SourceWatermarks(strategy, wallClock);
 * const a = wm.add('a.jsonl');
 * wm.onRecord(a, strategy.timestampOf(record));
 * wm.current(); // { watermark: <ts - outOfOrdernessMs - 1>, idle: false }
 */
export class SourceWatermarks {
  /** outOfOrdernessMs + 1: a split's watermark is its max timestamp minus this. */
  private readonly delay: number;
  private readonly idleTimeoutMs: number | undefined;
  private readonly clock: { now(): number };
  /** True once `add()` was called: handles are explicit, the implicit split is gone. */
  private explicit = false;
  private ids: string[] = [];
  private readonly idSet = new Set<string>();
  private watermarks: number[] = [];
  /** Processing time of each split's last record (or of its add()); kept only with idleness. */
  private lastActive: number[] = [];
  private finished: boolean[] = [];
  private combined = MIN_WATERMARK;

  constructor(strategy: WatermarkTiming, clock: { now(): number }) {
    checkTiming(strategy);
    this.delay = strategy.outOfOrdernessMs + 1;
    this.idleTimeoutMs = strategy.idleTimeoutMs;
    this.clock = clock;
    this.push(IMPLICIT_SPLIT); // rule 8: the implicit split, until add() is called
  }

  /**
   * Declares a split (its watermark is MIN_WATERMARK until its first record) and returns its
   * handle: 0, 1, 2, ... in order of declaration.
   */
  add(id: string): number {
    if (!this.explicit) {
      if (this.watermarks[0] !== MIN_WATERMARK) {
        throw new InternalError(
          `source split '${id}' was declared after records without a split handle: a reader must declare its splits before emitting, or never`,
        );
      }
      this.explicit = true;
      this.ids = [];
      this.watermarks = [];
      this.lastActive = [];
      this.finished = [];
    }
    if (this.idSet.has(id)) throw new InternalError(`source split '${id}' was declared twice`);
    this.idSet.add(id);
    return this.push(id);
  }

  private push(id: string): number {
    this.ids.push(id);
    this.watermarks.push(MIN_WATERMARK);
    this.lastActive.push(this.idleTimeoutMs === undefined ? 0 : this.clock.now());
    this.finished.push(false);
    return this.ids.length - 1;
  }

  /** The split is exhausted: from now on it no longer holds the watermark back. */
  finish(handle: number): void {
    if (!this.explicit || this.finished[handle] !== false) throw this.badHandle(handle, 'finish');
    this.finished[handle] = true;
  }

  /**
   * A record with event time `timestamp` was emitted from split `handle` (undefined: the
   * implicit split). The hot path: O(1), no allocation.
   */
  onRecord(handle: number | undefined, timestamp: number): void {
    const i = handle ?? (this.explicit ? this.badHandle(handle, 'record') : 0);
    if (this.finished[i] !== false || (handle !== undefined && !this.explicit)) {
      throw this.badHandle(handle, 'record');
    }
    if (!Number.isFinite(timestamp)) throw this.badTimestamp(i, timestamp);
    const watermark = timestamp - this.delay;
    if (watermark > this.watermarks[i]!) this.watermarks[i] = watermark;
    if (this.idleTimeoutMs !== undefined) this.lastActive[i] = this.clock.now();
  }

  /**
   * Combined watermark of the subtask: min over unfinished, non-idle splits of each split's
   * watermark, never decreasing; `idle` when no unfinished split is active. O(splits).
   */
  current(): SourceWatermark {
    const timeout = this.idleTimeoutMs;
    const now = timeout === undefined ? 0 : this.clock.now();
    const { watermarks, lastActive, finished } = this;
    let min = MAX_WATERMARK;
    let active = false;
    let unfinished = false;
    for (let i = 0; i < watermarks.length; i++) {
      if (finished[i]) continue;
      unfinished = true;
      if (timeout !== undefined && now - lastActive[i]! >= timeout) continue;
      active = true;
      const w = watermarks[i]!;
      if (w < min) min = w;
    }
    if (active && min > this.combined) this.combined = min;
    return { watermark: this.combined, idle: unfinished && !active };
  }

  private badHandle(handle: number | undefined, what: 'record' | 'finish'): never {
    if (handle === undefined) {
      throw new InternalError(
        'a source reader emitted a record without a split handle after declaring splits with ctx.splits.add()',
      );
    }
    const id = this.explicit && Number.isInteger(handle) ? this.ids[handle] : undefined;
    if (id === undefined) {
      const action = what === 'record' ? 'emitted a record for' : 'finished';
      throw new InternalError(
        `a source reader ${action} an unknown split handle (${describeValue(handle)})`,
      );
    }
    throw new InternalError(
      what === 'record'
        ? `a source reader emitted a record for split '${id}' after finishing it`
        : `a source reader finished split '${id}' twice`,
    );
  }

  private badTimestamp(handle: number, timestamp: unknown): EddyError {
    const hint = timestamp instanceof Date ? ' (return date.getTime())' : '';
    const split = this.explicit ? ` for a record of split '${this.ids[handle]}'` : '';
    return new EddyError(
      'EDDY_USER_FUNCTION',
      `the timestamp assigner returned ${describeValue(timestamp)}${split}: event time must be a finite number of epoch milliseconds${hint}`,
      { domain: 'user' },
    );
  }
}
