/**
 * Time windows and the assigners that put a record's timestamp into windows: tumbling, sliding
 * and session windows, in event time and in processing time. Pure; Flink's arithmetic.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { TimeDomain } from '../time.js';

/** The window [start, end): `end` is exclusive, so its last timestamp is `end - 1`. */
export class TimeWindow {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  /** The largest timestamp in the window (`end - 1`): when its event-time trigger fires. */
  get maxTimestamp(): number {
    return this.end - 1;
  }

  /**
   * Flink's `TimeWindow.intersects`: closed on both ends, so [a, b) and [b, c) intersect and a
   * session reaching `b` joins the one starting at `b`.
   */
  intersects(other: TimeWindow): boolean {
    return this.start <= other.end && this.end >= other.start;
  }

  /** The smallest window covering both. */
  cover(other: TimeWindow): TimeWindow {
    return new TimeWindow(Math.min(this.start, other.start), Math.max(this.end, other.end));
  }

  equals(other: TimeWindow): boolean {
    return this.start === other.start && this.end === other.end;
  }

  toString(): string {
    return `[${this.start}, ${this.end})`;
  }
}

/**
 * Start of the window of size `size` (shifted by `offset`) that holds `timestamp`, as Flink's
 * `TimeWindow.getWindowStartWithOffset`; correct for negative timestamps too.
 */
export const windowStart = (timestamp: number, offset: number, size: number): number =>
  timestamp - ((((timestamp - offset) % size) + size) % size);

/** Order of windows when several fire at once: by end, then by start. */
export const compareWindows = (a: TimeWindow, b: TimeWindow): number =>
  a.end - b.end || a.start - b.start;

/**
 * Puts a timestamp into windows. `isMerging` assigners (sessions) give each record its own
 * window, which the window operator merges with the key's overlapping windows.
 */
export interface WindowAssigner<W extends TimeWindow = TimeWindow> {
  /** Event time (the stream's timestamps, fired by watermarks) or processing time (the clock). */
  readonly timeDomain: TimeDomain;
  readonly isMerging: boolean;
  /** The windows `timestamp` belongs to. */
  assignWindows(timestamp: number): W[];
  /** e.g. `TumblingEventTimeWindows(60000)`, for operator names and messages. */
  toString(): string;
}

const checkPositive = (what: string, name: string, value: unknown): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(
      `${what}: ${name} must be a positive integer number of milliseconds, got ${String(value)}`,
    );
  }
  return value;
};

const checkOffset = (what: string, offset: unknown, bound: number, boundName: string): number => {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset)) {
    throw new InvalidArgumentError(
      `${what}: offset must be an integer number of milliseconds, got ${String(offset)}`,
    );
  }
  if (Math.abs(offset) >= bound) {
    throw new InvalidArgumentError(
      `${what}: offset must satisfy |offset| < ${boundName} (${bound}), got ${offset}`,
    );
  }
  return offset;
};

abstract class TumblingWindows implements WindowAssigner<TimeWindow> {
  abstract readonly timeDomain: TimeDomain;
  protected abstract readonly name: string;
  readonly isMerging = false;

  protected constructor(
    readonly size: number,
    readonly offset: number,
  ) {}

  assignWindows(timestamp: number): TimeWindow[] {
    const start = windowStart(timestamp, this.offset, this.size);
    return [new TimeWindow(start, start + this.size)];
  }

  protected static check(what: string, size: number, offset: number): void {
    checkPositive(what, 'size', size);
    checkOffset(what, offset, size, 'size');
  }

  toString(): string {
    const offset = this.offset === 0 ? '' : `, offset ${this.offset}`;
    return `${this.name}(${this.size}${offset})`;
  }
}

/**
 * Fixed-size, non-overlapping event-time windows: [k·size + offset, (k+1)·size + offset).
 * @example TumblingEventTimeWindows.of(60_000) // one window per minute
 */
export class TumblingEventTimeWindows extends TumblingWindows {
  readonly timeDomain = 'event';
  protected readonly name = 'TumblingEventTimeWindows';

  static of(sizeMs: number, offsetMs = 0): TumblingEventTimeWindows {
    TumblingWindows.check('TumblingEventTimeWindows', sizeMs, offsetMs);
    return new TumblingEventTimeWindows(sizeMs, offsetMs);
  }
}

/** {@link TumblingEventTimeWindows} on the clock: a record's time is its arrival time. */
export class TumblingProcessingTimeWindows extends TumblingWindows {
  readonly timeDomain = 'processing';
  protected readonly name = 'TumblingProcessingTimeWindows';

  static of(sizeMs: number, offsetMs = 0): TumblingProcessingTimeWindows {
    TumblingWindows.check('TumblingProcessingTimeWindows', sizeMs, offsetMs);
    return new TumblingProcessingTimeWindows(sizeMs, offsetMs);
  }
}

abstract class SlidingWindows implements WindowAssigner<TimeWindow> {
  abstract readonly timeDomain: TimeDomain;
  protected abstract readonly name: string;
  readonly isMerging = false;

  protected constructor(
    readonly size: number,
    readonly slide: number,
    readonly offset: number,
  ) {}

  /** Every window of size `size` starting at a multiple of `slide` (plus offset) holding it. */
  assignWindows(timestamp: number): TimeWindow[] {
    const windows: TimeWindow[] = [];
    const last = windowStart(timestamp, this.offset, this.slide);
    for (let start = last; start > timestamp - this.size; start -= this.slide) {
      windows.push(new TimeWindow(start, start + this.size));
    }
    return windows;
  }

  protected static check(what: string, size: number, slide: number, offset: number): void {
    checkPositive(what, 'size', size);
    checkPositive(what, 'slide', slide);
    checkOffset(what, offset, slide, 'slide');
  }

  toString(): string {
    const offset = this.offset === 0 ? '' : `, offset ${this.offset}`;
    return `${this.name}(${this.size}, ${this.slide}${offset})`;
  }
}

/**
 * Windows of `size` ms starting every `slide` ms, so a record is in about size/slide windows.
 * @example SlidingEventTimeWindows.of(60_000, 10_000) // the last minute, every 10 s
 */
export class SlidingEventTimeWindows extends SlidingWindows {
  readonly timeDomain = 'event';
  protected readonly name = 'SlidingEventTimeWindows';

  static of(sizeMs: number, slideMs: number, offsetMs = 0): SlidingEventTimeWindows {
    SlidingWindows.check('SlidingEventTimeWindows', sizeMs, slideMs, offsetMs);
    return new SlidingEventTimeWindows(sizeMs, slideMs, offsetMs);
  }
}

/** {@link SlidingEventTimeWindows} on the clock. */
export class SlidingProcessingTimeWindows extends SlidingWindows {
  readonly timeDomain = 'processing';
  protected readonly name = 'SlidingProcessingTimeWindows';

  static of(sizeMs: number, slideMs: number, offsetMs = 0): SlidingProcessingTimeWindows {
    SlidingWindows.check('SlidingProcessingTimeWindows', sizeMs, slideMs, offsetMs);
    return new SlidingProcessingTimeWindows(sizeMs, slideMs, offsetMs);
  }
}

abstract class SessionWindows implements WindowAssigner<TimeWindow> {
  abstract readonly timeDomain: TimeDomain;
  protected abstract readonly name: string;
  readonly isMerging = true;

  protected constructor(readonly gap: number) {}

  /** [timestamp, timestamp + gap): merged with the key's windows it intersects. */
  assignWindows(timestamp: number): TimeWindow[] {
    return [new TimeWindow(timestamp, timestamp + this.gap)];
  }

  toString(): string {
    return `${this.name}(${this.gap})`;
  }
}

/**
 * The gap of a session assigner that assigns exactly `[t, t + gap)` (eddy's own, not a subclass
 * overriding `assignWindows`), else undefined. Lets the window operator skip allocating the
 * one-window array per record.
 */
export const sessionGapOf = (assigner: WindowAssigner): number | undefined =>
  assigner instanceof SessionWindows &&
  assigner.assignWindows === SessionWindows.prototype.assignWindows
    ? assigner.gap
    : undefined;

/**
 * Per key, a session of records each at most `gap` ms after the previous one, by event time
 * (exactly `gap` apart still merges: Flink's windows [t, t+gap) and [t+gap, …) intersect); a
 * session ends `gap` ms after its last record. Window functions on sessions must be
 * able to merge (an AggregateFunction needs `merge`).
 * @example EventTimeSessionWindows.withGap(30 * 60_000)
 */
export class EventTimeSessionWindows extends SessionWindows {
  readonly timeDomain = 'event';
  protected readonly name = 'EventTimeSessionWindows';

  static withGap(gapMs: number): EventTimeSessionWindows {
    return new EventTimeSessionWindows(checkPositive('EventTimeSessionWindows', 'gap', gapMs));
  }
}

/** {@link EventTimeSessionWindows} on the clock: a session ends after `gap` ms of silence. */
export class ProcessingTimeSessionWindows extends SessionWindows {
  readonly timeDomain = 'processing';
  protected readonly name = 'ProcessingTimeSessionWindows';

  static withGap(gapMs: number): ProcessingTimeSessionWindows {
    return new ProcessingTimeSessionWindows(
      checkPositive('ProcessingTimeSessionWindows', 'gap', gapMs),
    );
  }
}
