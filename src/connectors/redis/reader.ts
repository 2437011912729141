/**
 * The Redis source's reader: one per subtask; see `source.ts` for how it reads.
 */
import { BadRecordError, describeSubtask, EddyError } from '../../core/errors.js';
import type { ConnectorContext, Counter, PollResult, SourceReader } from '../../runtime/io.js';
import type { OperatorListState } from '../../state/types.js';
import { type DeadLetterWriter, deadLettersFor } from '../dead-letters.js';
import { decodeFailureReason } from '../formats.js';
import { RateLimiter, splitShareRate, subtaskLimiter } from '../rate-limiter.js';
import { classifyFailure, DEFAULT_MAX_OUTAGE_MS, ioredis, RedisConnection } from './connection.js';
import { compareIds } from './ids.js';
import type { RedisStreamSourceOptions } from './source.js';
import { checkSplit, REDIS_SPLITS_STATE, type RedisStreamSplitState } from './splits.js';

/** An XREAD reply entry: id and flat field/value list. */
type Entry = [id: string, fields: string[]];

const NO_ENTRIES: Entry[] = [];

/** One stream being read: its position (in `state`), its split handle, fetched entries. */
interface StreamSplit {
  readonly state: RedisStreamSplitState;
  readonly handle: number;
  /** Entries fetched and not emitted yet: `buffer[next…]`. */
  buffer: Entry[];
  next: number;
}

/** The default decoding: JSON in the field `data`, found without building a field object. */
const decodeDataField = (fields: string[]): unknown => {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'data') return JSON.parse(fields[i + 1]!);
  }
  throw new Error("the entry has no field 'data' (the default deserialize reads JSON from it)");
};

const fieldObject = (fields: string[]): Record<string, string> => {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) o[fields[i]!] = fields[i + 1]!;
  return o;
};

/**
 * Reads the streams restored from operator state (in `open`) and those the enumerator
 * assigns; see the module comment.
 */
export class RedisStreamReader<T> implements SourceReader<T> {
  private state!: OperatorListState<RedisStreamSplitState>;
  private readonly splits: StreamSplit[] = [];
  private readonly byStream = new Map<string, StreamSplit>();
  private noMoreSplits = false;
  private unfinished = 0;
  private ended = false;
  private conn: RedisConnection | undefined;
  /** Second connection for `XREAD BLOCK`, made on the first idle poll. */
  private blocker: RedisConnection | undefined;
  private blocking = false;
  /** When the server became unreachable for polls (undefined: reachable). */
  private outageSince: number | undefined;
  /** Round robin start of the next emit. */
  private next = 0;
  private limiter: RateLimiter | undefined;
  private readonly deadLetters: DeadLetterWriter | undefined;
  private readonly entriesRead: Counter;
  private readonly owner: string;
  private readonly maxOutageMs: number;
  private readonly decode: (fields: string[], stream: string, id: string) => T;

  constructor(
    private readonly ctx: ConnectorContext,
    private readonly options: RedisStreamSourceOptions<T>,
  ) {
    this.owner = `redis stream source (${describeSubtask(ctx.subtask)})`;
    this.maxOutageMs = options.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS;
    this.entriesRead = ctx.metrics.counter('entriesRead');
    this.limiter = subtaskLimiter(options.ratePerSecond, ctx.subtask.parallelism, options.clock);
    this.deadLetters = deadLettersFor(options.badRecords, ctx);
    const user = options.deserialize;
    this.decode =
      user === undefined
        ? (fields) => decodeDataField(fields) as T
        : (fields, stream, id) => user(fieldObject(fields), { stream, id });
  }

  async open(): Promise<void> {
    await ioredis.load();
    this.state = this.ctx.operatorState.getListState<RedisStreamSplitState>(
      REDIS_SPLITS_STATE,
      'split',
    );
    if (this.ctx.isRestored) {
      this.add(
        this.state.get().map((e) => checkSplit(e, `restored '${REDIS_SPLITS_STATE}' element`)),
      );
    }
    this.conn = this.connect();
    // Fails early on a refusal (credentials); waits out an outage up to maxOutageMs.
    await this.conn.retrying('PING', undefined, (c) => c.ping());
  }

  private connect(queueWhileConnecting = false): RedisConnection {
    return new RedisConnection({
      url: this.options.url,
      role: 'source',
      owner: this.owner,
      maxOutageMs: this.maxOutageMs,
      queueWhileConnecting,
    });
  }

  addSplits(splits: readonly unknown[]): void {
    this.add(splits.map((e) => checkSplit(e, 'assigned split')));
  }

  notifyNoMoreSplits(): void {
    this.noMoreSplits = true;
  }

  /** Declares the splits, then finishes the finished ones (all adds come first). */
  private add(states: readonly RedisStreamSplitState[]): void {
    const added: StreamSplit[] = [];
    for (const state of states) {
      if (this.byStream.has(state.stream)) {
        throw new EddyError(
          'EDDY_INTERNAL',
          `${this.owner}: stream '${state.stream}' was assigned twice`,
        );
      }
      const split: StreamSplit = {
        state,
        handle: this.ctx.splits.add(state.stream),
        buffer: NO_ENTRIES,
        next: 0,
      };
      this.splits.push(split);
      this.byStream.set(state.stream, split);
      added.push(split);
    }
    for (const split of added) {
      const { state } = split;
      if (
        !state.finished &&
        state.end !== undefined &&
        compareIds(state.position, state.end) >= 0
      ) {
        state.finished = true;
      }
      if (state.finished) this.ctx.splits.finish(split.handle);
      else this.unfinished++;
    }
    this.updateRate();
  }

  private updateRate(): void {
    const rate = this.options.ratePerSecond;
    const all = this.splits[0]?.state.of;
    if (rate === undefined || all === undefined) return;
    const share = splitShareRate(rate, this.unfinished, all);
    if (this.limiter === undefined) this.limiter = new RateLimiter(share, this.options.clock);
    else this.limiter.setRate(share);
  }

  async poll(emit: (record: T, split?: number) => void, maxRecords: number): Promise<PollResult> {
    if (this.ended || this.ctx.stopSignal.aborted) return this.end();
    if (this.unfinished === 0) return this.noMoreSplits ? this.end() : 'idle';
    let budget = maxRecords;
    if (this.limiter !== undefined) {
      budget = this.limiter.available(maxRecords);
      if (budget === 0) budget = await this.limiter.acquire(maxRecords, this.ctx.stopSignal);
      if (this.ctx.stopSignal.aborted) return this.end();
    }
    if (!this.hasBuffered()) {
      const fetched = await this.fetch(budget);
      if (this.ctx.stopSignal.aborted) return this.end();
      if (!fetched) return 'idle'; // server unreachable: try again on the next poll
      if (!this.hasBuffered()) {
        if (this.unfinished === 0) return this.noMoreSplits ? this.end() : 'idle';
        this.waitForEntries();
        return 'idle';
      }
    }
    const n = this.emitBuffered(emit, budget);
    this.limiter?.consume(n);
    return 'more';
  }

  private hasBuffered(): boolean {
    for (const s of this.splits) if (s.next < s.buffer.length) return true;
    return false;
  }

  /**
   * One non-blocking XREAD over the unfinished streams from their positions, about `budget`
   * entries in all. False when the server is unreachable (within maxOutageMs).
   */
  private async fetch(budget: number): Promise<boolean> {
    const active = this.splits.filter((s) => !s.state.finished);
    const count = Math.max(1, Math.ceil(budget / active.length));
    const args: string[] = active.map((s) => s.state.stream);
    for (const s of active) args.push(s.state.position);
    let reply: [string, Entry[]][] | null;
    try {
      reply = await this.conn!.client.xread('COUNT', count, 'STREAMS', ...args);
    } catch (e) {
      return this.readFailed(e, active);
    }
    this.outageSince = undefined;
    const got = new Set<StreamSplit>();
    for (const [stream, entries] of reply ?? []) {
      const split = this.byStream.get(stream);
      if (split === undefined || entries.length === 0) continue;
      split.buffer = entries;
      split.next = 0;
      got.add(split);
    }
    // A bounded stream with nothing after its position holds nothing up to its end either
    // (entries deleted since the job started): done.
    for (const s of active) {
      if (s.state.end !== undefined && !got.has(s)) this.finishSplit(s);
    }
    let entries = 0;
    for (const s of got) entries += s.buffer.length;
    this.entriesRead.inc(entries);
    return true;
  }

  private async readFailed(e: unknown, active: readonly StreamSplit[]): Promise<false> {
    const conn = this.conn!;
    if (classifyFailure(e) !== 'transient' || conn.refused !== undefined) {
      throw conn.error('XREAD', await this.wrongKey(e, active), e);
    }
    const now = performance.now();
    this.outageSince ??= now;
    if (now - this.outageSince >= this.maxOutageMs) throw conn.outage('XREAD', e);
    return false;
  }

  /** For a WRONGTYPE reply, which of the streams is not one (XREAD does not say). */
  private async wrongKey(e: unknown, active: readonly StreamSplit[]): Promise<string | undefined> {
    if (!(e instanceof Error) || !e.message.startsWith('WRONGTYPE')) return undefined;
    for (const s of active) {
      try {
        const type = await this.conn!.client.type(s.state.stream);
        if (type !== 'stream' && type !== 'none') return s.state.stream;
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** Emits up to `budget` buffered entries, stream by stream from `next`. The hot loop. */
  private emitBuffered(emit: (record: T, split?: number) => void, budget: number): number {
    let n = 0;
    const count = this.splits.length;
    for (let k = 0; k < count && n < budget; k++) {
      const split = this.splits[(this.next + k) % count]!;
      n += this.emitSplit(split, emit, budget - n);
    }
    this.next = (this.next + 1) % count;
    return n;
  }

  private emitSplit(
    split: StreamSplit,
    emit: (record: T, split?: number) => void,
    budget: number,
  ): number {
    const { state, buffer, handle } = split;
    const end = state.end;
    const stream = state.stream;
    let n = 0;
    let i = split.next;
    while (n < budget && i < buffer.length) {
      const [id, fields] = buffer[i]!;
      if (end !== undefined && compareIds(id, end) > 0) {
        i = buffer.length;
        this.finishSplit(split);
        break;
      }
      i++;
      let record: T | undefined;
      let decoded = true;
      try {
        record = this.decode(fields, stream, id);
      } catch (e) {
        // Only decoding is guarded: errors thrown by `emit` (downstream) must propagate.
        decoded = false;
        this.badRecord(stream, id, fields, e);
      }
      state.position = id; // a dead-lettered entry is consumed too
      if (decoded) {
        emit(record as T, handle);
        n++;
      }
      if (end !== undefined && id === end) {
        i = buffer.length;
        this.finishSplit(split);
        break;
      }
    }
    split.next = i;
    if (i >= buffer.length) {
      split.buffer = NO_ENTRIES;
      split.next = 0;
    }
    return n;
  }

  private badRecord(stream: string, id: string, fields: string[], e: unknown): void {
    const reason = decodeFailureReason(e);
    if (this.deadLetters === undefined) {
      const error = new BadRecordError({ file: stream, line: 0 }, reason, e);
      // RecordOrigin has no entry id: the message names it instead of a line.
      error.message = `malformed record in Redis stream '${stream}' at entry ${id} (${this.conn?.server}): ${reason}`;
      throw error;
    }
    this.deadLetters.write({
      file: stream,
      line: 0,
      error: reason,
      raw: JSON.stringify({ id, fields: fieldObject(fields) }),
    });
  }

  private finishSplit(split: StreamSplit): void {
    if (split.state.finished) return;
    split.state.finished = true;
    split.buffer = NO_ENTRIES;
    split.next = 0;
    this.unfinished--;
    this.ctx.splits.finish(split.handle);
    this.updateRate();
  }

  /**
   * After an idle poll: one `XREAD BLOCK` on the second connection from the current
   * positions; an entry arriving wakes the subtask. At most one wait at a time; failures are
   * ignored here (the next poll sees the outage).
   */
  private waitForEntries(): void {
    if (this.blocking || this.ended) return;
    const active = this.splits.filter((s) => !s.state.finished);
    if (active.length === 0) return;
    // Queues while connecting: the first wait is usually sent before the connection is up.
    this.blocker ??= this.connect(true);
    const args: string[] = active.map((s) => s.state.stream);
    for (const s of active) args.push(s.state.position);
    this.blocking = true;
    this.blocker.client
      .xread('COUNT', 1, 'BLOCK', this.options.blockMs ?? 2000, 'STREAMS', ...args)
      .then(
        (reply) => {
          this.blocking = false;
          if (reply !== null) this.ctx.wakeup();
        },
        () => {
          this.blocking = false;
        },
      );
  }

  private end(): 'end' {
    this.ended = true;
    return 'end';
  }

  /** Writes every split's position (the last entry emitted) and end. */
  snapshotState(_checkpointId: number): void {
    // Fresh copies: the state backend may keep the objects, and ours keep changing.
    this.state.update(this.splits.map(({ state }) => ({ ...state })));
  }

  async close(): Promise<void> {
    this.ended = true;
    this.blocker?.close();
    this.conn?.close();
    this.deadLetters?.close();
  }
}
