/**
 * A token bucket limiting how many records a source subtask emits per second. Time comes from
 * an injectable clock so tests can drive it without real waiting.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { InvalidArgumentError } from '../core/errors.js';

/**
 * Time source and sleeper; `sleep` resolves early (never rejects) when `signal` aborts.
 *
 * @example
 * const clock: ConnectorClock = { now: () => Date.now(), sleep: (ms) => delay(ms) };
 */
export interface ConnectorClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/**
 * The real clock: `performance.now()` and timers that stop waiting on abort.
 *
 * @example
 * new RateLimiter(100, systemClock);
 */
export const systemClock: ConnectorClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => undefined),
};

/** The bucket holds at most this many seconds' worth of permits (the allowed burst). */
const BURST_SECONDS = 0.02;

/**
 * Permits at `ratePerSecond`, with bursts of up to 20 ms worth (at least 1): small, so a
 * throttled source stays smooth right after start and after every restart.
 * The bucket starts full. Use `available()` before emitting a batch and `consume(n)` after.
 *
 * @example
 * const limiter = new RateLimiter(1000);
 * let budget = limiter.available(500);
 * if (budget === 0) budget = await limiter.acquire(500, signal);
 * // ...emit up to `budget` records, then:
 * limiter.consume(emitted);
 */
export class RateLimiter {
  private rate: number;
  private cap: number;
  private tokens: number;
  private last: number;

  constructor(
    ratePerSecond: number,
    private readonly clock: ConnectorClock = systemClock,
  ) {
    checkRate(ratePerSecond);
    this.rate = ratePerSecond;
    this.cap = Math.max(1, ratePerSecond * BURST_SECONDS);
    this.tokens = this.cap;
    this.last = clock.now();
  }

  get ratePerSecond(): number {
    return this.rate;
  }

  /** The burst: at most this many permits at once. */
  get capacity(): number {
    return this.cap;
  }

  /**
   * Changes the rate from now on (permits accrued so far were at the old rate); e.g. a source
   * reader whose share of the total rate changes when one of its splits finishes.
   */
  setRate(ratePerSecond: number): void {
    checkRate(ratePerSecond);
    if (ratePerSecond === this.rate) return;
    this.refill();
    this.rate = ratePerSecond;
    this.cap = Math.max(1, ratePerSecond * BURST_SECONDS);
    this.tokens = Math.min(this.tokens, this.cap);
  }

  /** Whole permits available now, at most `wanted`. Does not take them. */
  available(wanted: number): number {
    this.refill();
    return Math.max(0, Math.min(wanted, Math.floor(this.tokens)));
  }

  /** Takes `n` permits (those just used). */
  consume(n: number): void {
    this.tokens -= n;
  }

  /**
   * Waits until at least one permit is available, then resolves with the permits available
   * (at most `wanted`); resolves 0 if `signal` aborts first.
   */
  async acquire(wanted: number, signal: AbortSignal): Promise<number> {
    for (;;) {
      const n = this.available(wanted);
      if (n > 0 || signal.aborted) return signal.aborted ? 0 : n;
      // At least 1 ms: a sub-ms wait may not move a large clock value at all (float
      // rounding), which would spin this loop forever.
      const ms = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
      await this.clock.sleep(ms, signal);
    }
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.last;
    this.last = now;
    if (elapsed > 0) {
      this.tokens = Math.min(this.cap, this.tokens + (elapsed * this.rate) / 1000);
    }
  }
}

const checkRate = (ratePerSecond: number): void => {
  if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) {
    throw new InvalidArgumentError(
      `ratePerSecond must be a positive finite number, got ${ratePerSecond}`,
    );
  }
};

/**
 * A reader's share of a source's TOTAL rate when the rate is divided over the source's splits
 * (files, ranges) rather than over its subtasks: `total × own / all`, where `own` is the number
 * of unfinished splits the reader holds (at least 1) and `all` the number of splits the source
 * has. So subtasks without splits take no share, and the splits together read at the total.
 *
 * @example
 * splitShareRate(15000, 1, 3); // 5000: one of three files
 */
export const splitShareRate = (totalPerSecond: number, own: number, all: number): number =>
  (totalPerSecond * Math.max(1, Math.min(own, all))) / Math.max(1, all);

/**
 * The per-subtask limiter for a TOTAL rate shared by `parallelism` subtasks, or undefined when
 * there is no limit.
 *
 * @example
 * subtaskLimiter(1000, 4, undefined)?.ratePerSecond; // 250
 */
export const subtaskLimiter = (
  totalPerSecond: number | undefined,
  parallelism: number,
  clock: ConnectorClock | undefined,
): RateLimiter | undefined =>
  totalPerSecond === undefined ? undefined : new RateLimiter(totalPerSecond / parallelism, clock);

/**
 * Throws an InvalidArgumentError unless `rate` is undefined or a positive finite number.
 *
 * @example
 * validateRate(options.ratePerSecond, 'file source');
 */
export const validateRate = (rate: number | undefined, what: string): void => {
  if (rate !== undefined && (!(rate > 0) || !Number.isFinite(rate))) {
    throw new InvalidArgumentError(`${what}: ratePerSecond must be a positive number, got ${rate}`);
  }
};
