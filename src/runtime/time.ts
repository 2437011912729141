/**
 * Time in the runtime: the clock processing time is read from, the timer service keyed
 * operators use, and side-output tags. Pure contracts; the implementation of keyed timers is
 * in timers.ts, watermark generation in watermarks.ts.
 *
 * Event time is a pure function of the record (a timestamp assigner), not a field carried
 * next to it: records travel as plain values in batches, so timestamps cost nothing on the
 * wire or the hot path where no operator needs them. Operators that need a record's time
 * (windows, `ctx.timestamp()` in process functions) call the stream's assigner again.
 */

/** Time domains of timers and windows. */
export type TimeDomain = 'event' | 'processing';

/** No event time yet: the watermark before any has arrived. */
export const MIN_WATERMARK = Number.NEGATIVE_INFINITY;
/** The final watermark: all event time has passed (end of bounded input). */
export const MAX_WATERMARK = Number.POSITIVE_INFINITY;

/**
 * Where processing time comes from. The runtime uses the wall clock; tests inject a manual
 * clock and advance it. `setTimer` calls `callback` once, at or after `at` (ms); the handle
 * cancels it.
 */
export interface ProcessingClock {
  now(): number;
  setTimer(at: number, callback: () => void): { cancel(): void };
}

export const wallClock: ProcessingClock = {
  now: () => Date.now(),
  setTimer(at, callback) {
    const t = setTimeout(callback, Math.max(0, at - Date.now()));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Timers of the current key, as user functions and operators see them. Timers are
 * deduplicated per (key, domain, timestamp), stored as keyed state in the key's key group,
 * so they are checkpointed, restored and redistributed with their keys on rescale.
 * An event-time timer fires when the watermark reaches its timestamp (>=); a processing-time
 * timer when the clock does.
 */
export interface TimerService {
  currentWatermark(): number;
  currentProcessingTime(): number;
  registerEventTimeTimer(timestamp: number): void;
  registerProcessingTimeTimer(timestamp: number): void;
  deleteEventTimeTimer(timestamp: number): void;
  deleteProcessingTimeTimer(timestamp: number): void;
}

/**
 * A typed name for a side output. Two tags are the same output iff their ids are equal.
 * @example const late = new OutputTag<Event>('late-events');
 */
export class OutputTag<T> {
  /** Phantom: carries T for the type checker only. */
  declare readonly __type?: T;
  constructor(readonly id: string) {
    if (typeof id !== 'string' || id === '') {
      throw new TypeError('an OutputTag needs a non-empty string id');
    }
  }
}
