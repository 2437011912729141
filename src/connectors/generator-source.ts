/**
 * A deterministic source of generated records, `generate(index)` for each index: bounded
 * (`count`) or unbounded. Positions are progressions in operator list state (`split` mode), so
 * a restore at another parallelism re-deals them and continues without duplicates or gaps.
 * It has no split enumerator: a subtask's initial splits are a pure function of its index and
 * the parallelism, so there is nothing to discover or assign.
 */
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import type { ConnectorContext, PollResult, Source, SourceReader } from '../runtime/io.js';
import type { OperatorListState } from '../state/types.js';
import {
  type ConnectorClock,
  type RateLimiter,
  splitShareRate,
  subtaskLimiter,
  validateRate,
} from './rate-limiter.js';

/** Name of the operator list state holding generator positions. */
export const GENERATOR_STATE = 'generator-ranges';

/**
 * One progression of indexes: `next`, `next + step`, ... below `end` (`null` = unbounded).
 * Bounded sources use contiguous ranges (`step` 1); unbounded ones strided progressions.
 */
export interface GeneratorSplitState {
  next: number;
  end: number | null;
  step: number;
  /**
   * How many progressions the source has in all (those with something to read when it first
   * started): each reader generates at `ratePerSecond × its live progressions / of`. Absent
   * in state written before it existed (then the rate is divided over the subtasks).
   */
  of?: number;
}

/** Options of `GeneratorSource.of`. */
export interface GeneratorSourceOptions<T> {
  /** Number of records; undefined = unbounded (ends only on the stop signal). */
  count?: number;
  /** The record for an index; must be a pure function of it for reproducible output. */
  generate: (index: number) => T;
  /**
   * Records per second in TOTAL, divided over the progressions (ranges) that have something
   * to generate, not over subtasks: after a rescale to more subtasks than ranges, the idle
   * subtasks take no share.
   */
  ratePerSecond?: number;
  /** ConnectorClock for the rate limiter (tests inject a fake one). */
  clock?: ConnectorClock;
}

const validate = <T>(o: GeneratorSourceOptions<T>): void => {
  if (typeof o.generate !== 'function') {
    throw new InvalidArgumentError('generator source: `generate` must be a function');
  }
  if (o.count !== undefined && (!Number.isSafeInteger(o.count) || o.count < 0)) {
    throw new InvalidArgumentError(
      `generator source: count must be a non-negative integer or undefined, got ${o.count}`,
    );
  }
  validateRate(o.ratePerSecond, 'generator source');
};

/**
 * Factory for generator sources.
 *
 * @example
 * const clicks = GeneratorSource.of({
 *   count: 1_000_000,
 *   generate: (i) => ({ user: `u${Math.floor(hashToUnit(i) * 100)}`, amount: i % 10 }),
 * });
 */
export const GeneratorSource = {
  of<T>(options: GeneratorSourceOptions<T>): Source<T> {
    validate(options);
    return {
      defaultName: 'generator-source',
      createReader: (ctx) => new GeneratorReader(ctx, options),
    };
  },
};

/**
 * The initial progressions of subtask `i` of `p`: bounded, the contiguous index range
 * [floor(i*count/p), floor((i+1)*count/p)); unbounded, i, i+p, i+2p, ...
 *
 * @example
 * initialGeneratorSplits(10, 1, 3); // [{ next: 3, end: 6, step: 1, of: 3 }]
 */
export const initialGeneratorSplits = (
  count: number | undefined,
  subtaskIndex: number,
  parallelism: number,
): GeneratorSplitState[] => {
  if (count === undefined) {
    return [{ next: subtaskIndex, end: null, step: parallelism, of: parallelism }];
  }
  // Multiply first, in integers below 2^53 for any realistic count * parallelism.
  const next = Math.floor((subtaskIndex * count) / parallelism);
  const end = Math.floor(((subtaskIndex + 1) * count) / parallelism);
  // Ranges of count/p >= 1 indexes are all non-empty; below that, `count` of them hold one.
  return [{ next, end, step: 1, of: Math.max(1, Math.min(count, parallelism)) }];
};

const restoreSplit = (e: unknown): GeneratorSplitState => {
  const s = e as Partial<GeneratorSplitState> | null;
  const ok =
    s !== null &&
    typeof s === 'object' &&
    Number.isSafeInteger(s.next) &&
    Number.isSafeInteger(s.step) &&
    s.step! > 0 &&
    (s.end === null || Number.isSafeInteger(s.end)) &&
    (s.of === undefined || (Number.isSafeInteger(s.of) && s.of > 0));
  if (!ok) {
    throw new EddyError(
      'EDDY_STATE',
      `generator source: restored '${GENERATOR_STATE}' element is not a position: ${JSON.stringify(e)}`,
    );
  }
  const split: GeneratorSplitState = { next: s.next!, end: s.end!, step: s.step! };
  if (s.of !== undefined) split.of = s.of;
  return split;
};

const exhausted = (s: GeneratorSplitState): boolean => s.end !== null && s.next >= s.end;

class GeneratorReader<T> implements SourceReader<T> {
  private state!: OperatorListState<GeneratorSplitState>;
  /** All progressions (snapshotted); `live` is the subset not yet exhausted. */
  private splits: GeneratorSplitState[] = [];
  private live: GeneratorSplitState[] = [];
  /** The `ctx.splits` handle of each `live` progression (same index); empty: the implicit split. */
  private liveHandles: number[] = [];
  /** With event time, progressions are read in turns, record by record, bounded ones too. */
  private interleave = false;
  private cursor = 0;
  private readonly limiter: RateLimiter | undefined;
  /** How many progressions the source has in all (the splits' `of`), if known. */
  private splitsInAll: number | undefined;

  constructor(
    private readonly ctx: ConnectorContext,
    private readonly options: GeneratorSourceOptions<T>,
  ) {
    this.limiter = subtaskLimiter(options.ratePerSecond, ctx.subtask.parallelism, options.clock);
  }

  async open(): Promise<void> {
    this.state = this.ctx.operatorState.getListState<GeneratorSplitState>(GENERATOR_STATE, 'split');
    const { subtaskIndex, parallelism } = this.ctx.subtask;
    this.splits = this.ctx.isRestored
      ? this.state.get().map(restoreSplit)
      : initialGeneratorSplits(this.options.count, subtaskIndex, parallelism);
    this.live = this.splits.filter((s) => !exhausted(s));
    // One watermark per progression: after a restore a subtask may hold several, and one that
    // is behind in event time must not have its records made late by one that is ahead.
    if (this.ctx.splits.watermarked) {
      this.interleave = true;
      this.liveHandles = this.live.map((s, i) =>
        this.ctx.splits.add(`generator-${i}:${s.next}/${s.step}`),
      );
    }
    for (const s of this.splits) if (s.of !== undefined) this.splitsInAll = s.of;
    this.updateRate();
  }

  /**
   * This reader's share of the total rate: `ratePerSecond × live progressions / all of them`
   * (the limiter starts at `ratePerSecond / parallelism`, kept for state without `of`).
   */
  private updateRate(): void {
    const rate = this.options.ratePerSecond;
    if (rate === undefined || this.splitsInAll === undefined || this.live.length === 0) return;
    this.limiter?.setRate(splitShareRate(rate, this.live.length, this.splitsInAll));
  }

  /**
   * Never returns `'idle'` and never waits for data: without a rate it emits `maxRecords` and
   * returns at once (unbounded too). With a rate it may sleep until the next permit, which is
   * at most one record's worth of time per poll (the limiter's burst is at least one record).
   */
  async poll(emit: (record: T, split?: number) => void, maxRecords: number): Promise<PollResult> {
    const stop = this.ctx.stopSignal;
    if (stop.aborted || this.live.length === 0) return 'end';
    let budget = maxRecords;
    if (this.limiter !== undefined) {
      budget = this.limiter.available(maxRecords);
      if (budget === 0) budget = await this.limiter.acquire(maxRecords, stop);
      if (stop.aborted) return 'end';
    }
    const live = this.live.length;
    const n = this.emitUpTo(emit, budget);
    this.limiter?.consume(n);
    if (this.live.length !== live) this.updateRate();
    return this.live.length === 0 ? 'end' : 'more';
  }

  /**
   * Bounded ranges are read one after another; unbounded progressions take turns record by
   * record, so every restored progression keeps advancing. With event time (per-progression
   * watermarks), bounded ranges take turns too, so that none holds the watermark back unread.
   */
  private emitUpTo(emit: (record: T, split?: number) => void, budget: number): number {
    const generate = this.options.generate;
    const live = this.live;
    const handles = this.liveHandles;
    let n = 0;
    while (n < budget && live.length > 0) {
      if (this.cursor >= live.length) this.cursor = 0;
      const s = live[this.cursor]!;
      if (exhausted(s)) {
        this.drop(this.cursor);
        continue;
      }
      const record = generate(s.next);
      s.next += s.step;
      emit(record, handles[this.cursor]);
      n++;
      if (s.end !== null && s.next >= s.end) this.drop(this.cursor);
      else if (s.end === null || this.interleave) this.cursor++;
    }
    return n;
  }

  /** Removes exhausted progression `i` from `live` (and finishes its split). */
  private drop(i: number): void {
    this.live.splice(i, 1);
    if (this.liveHandles.length === 0) return;
    this.ctx.splits.finish(this.liveHandles[i]!);
    this.liveHandles.splice(i, 1);
  }

  snapshotState(_checkpointId: number): void {
    // Copies: the state backend may keep the objects, and ours keep advancing.
    this.state.update(this.splits.map((s) => ({ ...s })));
  }

  async close(): Promise<void> {}
}

const fmix32 = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};

/**
 * A well-mixed unsigned 32-bit hash of an integer index (MurmurHash3's fmix32 over both 32-bit
 * halves, seeded): deterministic across runs and platforms, for reproducible demo data.
 *
 * @example
 * hashToUint32(42, 7); // the same value on every run
 */
export const hashToUint32 = (index: number, seed = 0): number => {
  const lo = index >>> 0;
  const hi = Math.floor(index / 0x100000000) >>> 0;
  const h = fmix32((Math.imul(seed, 0x9e3779b9) ^ Math.imul(hi, 0x85ebca6b) ^ 0x27d4eb2f) >>> 0);
  return fmix32((h + Math.imul(lo, 0xcc9e2d51)) >>> 0);
};

/**
 * A deterministic pseudo-random number in [0, 1) for an index (and optional seed), e.g. to
 * pick a user or an amount in `generate`.
 *
 * @example
 * const amount = Math.floor(hashToUnit(i, 1) * 100); // 0..99, same for the same i
 */
export const hashToUnit = (index: number, seed = 0): number =>
  hashToUint32(index, seed) / 0x100000000;
