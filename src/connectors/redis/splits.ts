/**
 * The Redis source's splits: one per stream key, its position kept in operator list state,
 * and the split enumerator that deals them to the readers (in the job master).
 */
import { EddyError } from '../../core/errors.js';
import type { SplitEnumerator, SplitEnumeratorContext } from '../../runtime/io.js';
import { DEFAULT_MAX_OUTAGE_MS, ioredis, RedisConnection } from './connection.js';
import { compareIds, ID_ZERO, isEntryId } from './ids.js';

/** Name of the operator list state holding stream positions. */
export const REDIS_SPLITS_STATE = 'redis-stream-splits';

/** Position of one stream, as stored in operator state (one list element per stream). */
export interface RedisStreamSplitState {
  /** The stream key. */
  stream: string;
  /** Id of the last entry emitted; `0-0` before the first. */
  position: string;
  /** Bounded: the last entry id the stream had when the job started (`0-0`: it was empty). */
  end?: string;
  finished: boolean;
  /** How many streams the source has in all (the rate is divided over them). */
  of: number;
}

/** What the enumerator needs of the source's options. */
export interface EnumeratorOptions {
  url: string;
  streams: string[];
  bounded?: boolean;
  maxOutageMs?: number;
}

/** A split from state or from the enumerator, validated. */
export const checkSplit = (e: unknown, what: string): RedisStreamSplitState => {
  const s = e as Partial<RedisStreamSplitState> | null;
  const ok =
    s !== null &&
    typeof s === 'object' &&
    typeof s.stream === 'string' &&
    isEntryId(s.position) &&
    (s.end === undefined || isEntryId(s.end)) &&
    typeof s.finished === 'boolean' &&
    Number.isSafeInteger(s.of) &&
    (s.of as number) > 0;
  if (!ok) {
    throw new EddyError(
      'EDDY_STATE',
      `redis stream source: ${what} is not a stream position: ${JSON.stringify(e)}`,
    );
  }
  const split: RedisStreamSplitState = {
    stream: s.stream!,
    position: s.position!,
    finished: s.finished!,
    of: s.of!,
  };
  if (s.end !== undefined) split.end = s.end;
  return split;
};

/** The enumerator's checkpointed state: splits not dealt to any reader yet. */
interface RedisEnumeratorState {
  unassigned: RedisStreamSplitState[];
}

/**
 * Runs in the job master. Fresh: one split per stream (with `bounded`, its end read from the
 * server now), stream `i` dealt to reader `i % p`. Restored: the readers keep their splits
 * (operator state) and it deals only those its state lists as unassigned.
 */
export class RedisSplitEnumerator implements SplitEnumerator {
  private splits: RedisStreamSplitState[] = [];
  private readonly served = new Set<number>();

  constructor(
    private readonly ctx: SplitEnumeratorContext,
    private readonly options: EnumeratorOptions,
  ) {}

  async start(): Promise<void> {
    await ioredis.load();
    if (this.ctx.isRestored) {
      this.splits = restoreEnumeratorState(this.ctx.restoredState);
      return;
    }
    const of = this.options.streams.length;
    this.splits = this.options.streams.map((stream) => ({
      stream,
      position: ID_ZERO,
      finished: false,
      of,
    }));
    if (this.options.bounded) await this.readEnds();
  }

  /** Bounded: each split ends at its stream's last entry now (`0-0`: empty or missing). */
  private async readEnds(): Promise<void> {
    const conn = new RedisConnection({
      url: this.options.url,
      role: 'source',
      owner: 'redis stream source (split enumerator)',
      maxOutageMs: this.options.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS,
    });
    try {
      const ends = await Promise.all(
        this.splits.map((s) =>
          conn.retrying('XREVRANGE (the last entry id)', s.stream, (c) =>
            c.xrevrange(s.stream, '+', '-', 'COUNT', 1),
          ),
        ),
      );
      this.splits.forEach((s, i) => {
        s.end = ends[i]![0]?.[0] ?? ID_ZERO;
        s.finished = compareIds(s.position, s.end) >= 0;
      });
    } finally {
      conn.close();
    }
  }

  addReader(subtask: number): void {
    if (!this.served.has(subtask)) {
      this.served.add(subtask);
      const p = this.ctx.parallelism;
      const mine = this.splits.filter((_, k) => k % p === subtask).map((s) => ({ ...s }));
      if (mine.length > 0) this.ctx.assignSplits(subtask, mine);
    }
    this.ctx.signalNoMoreSplits(subtask);
  }

  snapshotState(_checkpointId: number): RedisEnumeratorState {
    const p = this.ctx.parallelism;
    return {
      unassigned: this.splits.filter((_, k) => !this.served.has(k % p)).map((s) => ({ ...s })),
    };
  }

  close(): void {}
}

const restoreEnumeratorState = (state: unknown): RedisStreamSplitState[] => {
  // No enumerator state stored (the readers' state alone was restored): nothing unassigned.
  if (state === undefined || state === null) return [];
  const s = state as Partial<RedisEnumeratorState>;
  if (typeof s !== 'object' || !Array.isArray(s.unassigned)) {
    throw new EddyError(
      'EDDY_STATE',
      `redis stream source: restored split enumerator state is malformed: ${JSON.stringify(state)}`,
    );
  }
  return s.unassigned.map((e) => checkSplit(e, 'restored enumerator split'));
};
