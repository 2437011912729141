/**
 * The Nexmark source: the generator (generator.ts) behind the generic generator source, so
 * positions live in split-mode operator list state and a restore at another parallelism
 * continues without duplicates or gaps. Bounded, subtask i of p generates the contiguous
 * event-id range [i*N/p, (i+1)*N/p); unbounded, the ids i, i+p, i+2p, ... Within one range
 * (or progression) events come in `dateTime` order.
 *
 * Watermarks: give the source {@link NexmarkSource.watermarks} (`dateTime` − 4 s). The
 * generator source tracks one watermark per subtask. A subtask restored with several bounded
 * ranges reads them one after another in id order (restored ranges are dealt out contiguously
 * in old-subtask order), so no event of a later range is behind an earlier one. Hazard:
 * unbounded progressions restored onto one subtask are read in turns, so if one was more than
 * 4 s of event time (40,000 events at the default rate) behind another when the savepoint was
 * taken, its events can be late; a rate limit keeps subtasks in step.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { Source } from '../../runtime/io.js';
import { WatermarkStrategy } from '../../runtime/watermarks.js';
import { GeneratorSource } from '../generator-source.js';
import { type NexmarkConfig, nexmarkConfig, nexmarkEvent } from './generator.js';
import type { NexmarkEvent } from './model.js';

/** How far behind the largest `dateTime` seen the watermark trails (Nexmark's 4 s). */
export const NEXMARK_OUT_OF_ORDERNESS_MS = 4000;

/** Options of {@link NexmarkSource.of}. */
export interface NexmarkSourceOptions {
  /** Number of events (ids 0 to events - 1); undefined = unbounded (ends only on a stop). */
  events?: number;
  /** Events per second in total over all subtasks (wall clock); undefined = as fast as possible. */
  ratePerSecond?: number;
  /** Event time of event 0 and events per second of event time (defaults: 2026-01-01, 10,000). */
  config?: Partial<NexmarkConfig>;
}

/**
 * Factory for Nexmark sources: the deterministic Nexmark event stream (persons, auctions and
 * bids; docs/NEXMARK-QUERIES.md), the same events whatever the parallelism, rescales or restarts.
 *
 * @example
 * const events = env.fromSource(NexmarkSource.of({ events: 1_000_000 }), {
 *   uid: 'nexmark',
 *   watermarks: NexmarkSource.watermarks(),
 * });
 * const bids = events.filter((e): e is Bid => e.type === 'bid');
 */
export const NexmarkSource = {
  of(options: NexmarkSourceOptions = {}): Source<NexmarkEvent> {
    const { events, ratePerSecond } = options;
    if (events !== undefined && (!Number.isSafeInteger(events) || events < 0)) {
      throw new InvalidArgumentError(
        `nexmark source: events must be a non-negative integer or undefined, got ${events}`,
      );
    }
    let config: NexmarkConfig;
    try {
      config = nexmarkConfig(options.config);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
    const source = GeneratorSource.of<NexmarkEvent>({
      ...(events === undefined ? {} : { count: events }),
      ...(ratePerSecond === undefined ? {} : { ratePerSecond }),
      generate: (id) => nexmarkEvent(id, config),
    });
    return { ...source, defaultName: 'nexmark-source' };
  },
  /** Event time from `dateTime`, watermark `dateTime` − 4 s (bounded out-of-orderness). */
  watermarks<T extends { readonly dateTime: number } = NexmarkEvent>(): WatermarkStrategy<T> {
    return WatermarkStrategy.forBoundedOutOfOrderness<T>(
      NEXMARK_OUT_OF_ORDERNESS_MS,
    ).withTimestampAssigner((e) => e.dateTime);
  },
};
