/**
 * NATS JetStream source. One split per subject of the stream; the split enumerator (job
 * master) resolves the subjects once and deals subject `i` to reader `i % p`. Each split's
 * position — the stream sequence of the last message emitted — lives in operator list state
 * in `split` mode, so a restore at any parallelism re-deals the subjects and each continues at
 * `position + 1`: exactly once, as the file source. A reader fetches every subject it holds in
 * the background ({@link SubjectFetcher}) into bounded buffers and emits from them
 * synchronously; a poll with nothing buffered returns `'idle'`, and the arrival of messages
 * wakes the subtask (`ctx.wakeup()`). Each subject is a split for per-split watermarks.
 *
 * Bounded (`bounded: true`): every subject is read up to the stream's last sequence when the
 * job first started (kept in the split state, so a restore keeps the same bound), then the
 * source ends. Unbounded (default): it ends only when the job stops.
 */
import {
  BadRecordError,
  describeSubtask,
  EddyError,
  InvalidArgumentError,
} from '../../core/errors.js';
import type {
  ConnectorContext,
  Counter,
  PollResult,
  Source,
  SourceReader,
  SplitEnumerator,
  SplitEnumeratorContext,
} from '../../runtime/io.js';
import type { OperatorListState } from '../../state/types.js';
import { type DeadLetterWriter, deadLettersFor, validateBadRecords } from '../dead-letters.js';
import { type ConnectorClock, RateLimiter, splitShareRate, validateRate } from '../rate-limiter.js';
import { type NatsConnectionSettings, type NatsLink, openLink } from './connection.js';
import { API_TIMEOUT_MS, classifyStartError, NatsSplitEnumerator } from './enumerator.js';
import { ioError, reason } from './errors.js';
import { natsJetStream } from './libs.js';
import { checkSequenceSplit, finishedAtStart, type SequenceSplitState } from './positions.js';
import { type FetcherHost, SubjectFetcher } from './subject-fetcher.js';
import { subjectProblem } from './subjects.js';

/** Name of the operator list state holding the subjects' positions. */
export const NATS_SPLITS_STATE = 'nats-splits';

/** Where a message came from, for `deserialize`. */
export interface NatsMessageMeta {
  readonly subject: string;
  /** Stream sequence. */
  readonly seq: number;
}

/** Options of {@link NatsSource.of}. */
export interface NatsSourceOptions<T> extends NatsConnectionSettings {
  /** The JetStream stream to read. */
  stream: string;
  /**
   * Subjects to read: exact subjects and/or wildcard patterns (`*`, `>`), resolved against
   * the stream's subjects when the job first starts (default: all of them). One split per
   * concrete subject. Hazard: a pattern only finds subjects holding messages at that moment.
   */
  subjects?: string | string[];
  /**
   * True: read each subject up to the stream's last sequence at the job's first start, then
   * end. False (default): unbounded, ends only when the job stops.
   */
  bounded?: boolean;
  /** Turns a message into a record (default: `JSON.parse` of its UTF-8 payload). */
  deserialize?: (data: Uint8Array, meta: NatsMessageMeta) => T;
  /**
   * `'fail'` (default): an undeserializable message fails the job with a BadRecordError
   * naming stream, subject and sequence. Otherwise it goes to dead-letter files (its raw
   * payload as UTF-8).
   */
  badRecords?: 'fail' | { deadLetterDir: string };
  /** Records per second in TOTAL, divided over the subjects (as the file source). */
  ratePerSecond?: number;
  /** Messages per fetch, and the most buffered per subject (default 1000). */
  fetchBatch?: number;
  /** How long one fetch waits for messages before it is renewed (default 10 000 ms). */
  fetchExpiresMs?: number;
  /** Clock for the rate limiter (tests). */
  clock?: ConnectorClock;
}

const DEFAULT_FETCH_BATCH = 1000;
const DEFAULT_FETCH_EXPIRES_MS = 10_000;

const validate = <T>(o: NatsSourceOptions<T>): void => {
  const servers = typeof o.servers === 'string' ? [o.servers] : o.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => s === '')) {
    throw new InvalidArgumentError('nats source: `servers` must be a URL or a non-empty list');
  }
  if (typeof o.stream !== 'string' || o.stream === '' || /[\s.*>]/.test(o.stream)) {
    throw new InvalidArgumentError(
      `nats source: \`stream\` must be a stream name (no spaces, '.', '*' or '>'), got ${JSON.stringify(o.stream)}`,
    );
  }
  const subjects =
    o.subjects === undefined ? [] : typeof o.subjects === 'string' ? [o.subjects] : o.subjects;
  if (o.subjects !== undefined && subjects.length === 0) {
    throw new InvalidArgumentError('nats source: `subjects` must not be empty (omit it for all)');
  }
  for (const s of subjects) {
    const problem = subjectProblem(s);
    if (problem !== undefined) {
      throw new InvalidArgumentError(
        `nats source: subject ${JSON.stringify(s)} is invalid: ${problem}`,
      );
    }
  }
  validateRate(o.ratePerSecond, 'nats source');
  positiveInt(o.fetchBatch, 'fetchBatch', 1);
  positiveInt(o.fetchExpiresMs, 'fetchExpiresMs', 1000);
  positiveInt(o.maxOutageMs, 'maxOutageMs', 0);
  validateBadRecords(o.badRecords, 'nats source');
};

const positiveInt = (v: number | undefined, name: string, min: number): void => {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) {
    throw new InvalidArgumentError(`nats source: ${name} must be an integer >= ${min}, got ${v}`);
  }
};

/**
 * Factory for NATS JetStream sources.
 *
 * @example
 * const orders = NatsSource.of<{ id: string; amount: number }>({
 *   servers: 'nats://127.0.0.1:4222',
 *   stream: 'ORDERS',
 *   subjects: 'orders.*',
 * });
 */
export const NatsSource = {
  /** A source reading `options.stream` (see {@link NatsSourceOptions}). */
  of<T = unknown>(options: NatsSourceOptions<T>): Source<T> {
    validate(options);
    return {
      defaultName: 'nats-source',
      createReader: (ctx) => new NatsSourceReader<T>(ctx, options),
      createEnumerator: (ctx: SplitEnumeratorContext): SplitEnumerator =>
        new NatsSplitEnumerator(ctx, options),
    };
  },
};

/** One subject being read: its position, split handle and fetcher. */
interface ReaderSplit {
  readonly state: SequenceSplitState;
  readonly handle: number;
  fetcher: SubjectFetcher | undefined;
}

const utf8 = new TextDecoder();
const parseJson = (data: Uint8Array): unknown => JSON.parse(utf8.decode(data));

class NatsSourceReader<T> implements SourceReader<T> {
  private state!: OperatorListState<SequenceSplitState>;
  private link: NatsLink | undefined;
  private host: FetcherHost | undefined;
  private readonly splits: ReaderSplit[] = [];
  private readonly subjects = new Set<string>();
  private noMoreSplits = false;
  private next = 0;
  private unfinished = 0;
  private ended = false;
  private failure: EddyError | undefined;
  /** Fetchers of finished splits being closed (their consumers deleted); awaited by close. */
  private closing: Promise<void>[] = [];
  private limiter: RateLimiter | undefined;
  private splitsInAll: number | undefined;
  private readonly deadLetters: DeadLetterWriter | undefined;
  private readonly received: Counter;

  constructor(
    private readonly ctx: ConnectorContext,
    private readonly options: NatsSourceOptions<T>,
  ) {
    this.received = ctx.metrics.counter('messagesRead');
    this.deadLetters = deadLettersFor(options.badRecords, ctx);
  }

  async open(): Promise<void> {
    this.state = this.ctx.operatorState.getListState<SequenceSplitState>(
      NATS_SPLITS_STATE,
      'split',
    );
    const link = await openLink(this.options, 'source', this.ctx.stopSignal);
    this.link = link;
    try {
      const jsm = await natsJetStream.get().jetstreamManager(link.nc, { timeout: API_TIMEOUT_MS });
      this.host = {
        jsm,
        js: jsm.jetstream(),
        stream: this.options.stream,
        server: link.server,
        outage: link.outage,
        batch: this.options.fetchBatch ?? DEFAULT_FETCH_BATCH,
        expiresMs: this.options.fetchExpiresMs ?? DEFAULT_FETCH_EXPIRES_MS,
        description: `eddy ${describeSubtask(this.ctx.subtask)}`,
        consumersCreated: this.ctx.metrics.counter('consumersCreated'),
        staleFetches: this.ctx.metrics.counter('staleFetches'),
        wakeup: () => this.ctx.wakeup(),
        fail: (e) => {
          this.failure ??= e;
          this.ctx.wakeup();
        },
      };
    } catch (e) {
      await link.close();
      throw classifyStartError(e, link.server, this.options.stream);
    }
    if (this.ctx.isRestored) {
      this.add(
        this.state
          .get()
          .map((e) =>
            checkSequenceSplit(e, `nats source: restored '${NATS_SPLITS_STATE}' element`),
          ),
      );
    }
  }

  addSplits(splits: readonly unknown[]): void {
    this.add(splits.map((e) => checkSequenceSplit(e, 'nats source: assigned split')));
  }

  notifyNoMoreSplits(): void {
    this.noMoreSplits = true;
  }

  /** Declares the splits (all adds first), then finishes or starts fetching each. */
  private add(states: readonly SequenceSplitState[]): void {
    const added: ReaderSplit[] = [];
    for (const state of states) {
      if (this.subjects.has(state.split)) {
        throw new EddyError(
          'EDDY_INTERNAL',
          `nats source: subject '${state.split}' was assigned to ${describeSubtask(this.ctx.subtask)} twice`,
        );
      }
      const split: ReaderSplit = {
        state,
        handle: this.ctx.splits.add(state.split),
        fetcher: undefined,
      };
      this.splits.push(split);
      this.subjects.add(state.split);
      added.push(split);
    }
    for (const split of added) {
      const s = split.state;
      if (s.of !== undefined) this.splitsInAll = s.of;
      if (finishedAtStart(s)) {
        s.finished = true;
        this.ctx.splits.finish(split.handle);
        continue;
      }
      this.unfinished++;
      split.fetcher = new SubjectFetcher(this.host!, s.split, s.position, s.end);
      split.fetcher.start();
    }
    this.updateRate();
  }

  /** The share of the total rate: `ratePerSecond × unfinished splits here / splits in all`. */
  private updateRate(): void {
    const rate = this.options.ratePerSecond;
    if (rate === undefined) return;
    const share =
      this.splitsInAll === undefined
        ? rate / this.ctx.subtask.parallelism
        : splitShareRate(rate, this.unfinished, this.splitsInAll);
    if (this.limiter === undefined) this.limiter = new RateLimiter(share, this.options.clock);
    else this.limiter.setRate(share);
  }

  async poll(emit: (record: T, split?: number) => void, maxRecords: number): Promise<PollResult> {
    if (this.failure !== undefined) throw this.failure;
    if (this.ended || this.ctx.stopSignal.aborted) return this.end();
    const link = this.link!;
    // Finished splits need no server: a bounded read that is done ends even while it is away.
    if (link.outage.exceeded && this.unfinished > 0) {
      throw ioError(
        'source',
        link.server,
        `away for ${Math.round(link.outage.elapsedMs)} ms (maxOutageMs ${link.outage.maxMs}) while reading stream '${this.options.stream}'`,
      );
    }
    if (!this.anyBuffered()) return this.settle();
    let budget = maxRecords;
    if (this.limiter !== undefined) {
      budget = this.limiter.available(maxRecords);
      if (budget === 0) budget = await this.limiter.acquire(maxRecords, this.ctx.stopSignal);
      if (this.ctx.stopSignal.aborted) return this.end();
    }
    const n = this.emitBuffered(emit, budget);
    this.limiter?.consume(n);
    this.finishDone();
    return 'more';
  }

  /**
   * Emits up to `budget` buffered messages, subject after subject in round robin from `next`
   * (the next poll starts at the following subject, so none runs far ahead). The hot loop.
   */
  private emitBuffered(emit: (record: T, split?: number) => void, budget: number): number {
    let n = 0;
    const count = this.splits.length;
    for (let k = 0; k < count && n < budget; k++) {
      const split = this.splits[(this.next + k) % count]!;
      const f = split.fetcher;
      if (f === undefined) continue;
      n += this.emitSplit(split, f, emit, budget - n);
      f.taken();
    }
    this.next = (this.next + 1) % Math.max(1, count);
    this.received.inc(n);
    return n;
  }

  private emitSplit(
    split: ReaderSplit,
    f: SubjectFetcher,
    emit: (record: T, split?: number) => void,
    budget: number,
  ): number {
    const deserialize = this.options.deserialize;
    const { state, handle } = split;
    let n = 0;
    while (n < budget) {
      const m = f.take();
      if (m === undefined) break;
      let record: T;
      try {
        record =
          deserialize === undefined
            ? (parseJson(m.data) as T)
            : deserialize(m.data, { subject: m.subject, seq: m.seq });
      } catch (e) {
        // Only decoding is guarded: errors thrown by `emit` (downstream) must propagate.
        state.position = m.seq;
        this.badRecord(m.subject, m.seq, m.data, e);
        continue;
      }
      state.position = m.seq;
      emit(record, handle);
      n++;
    }
    return n;
  }

  private badRecord(subject: string, seq: number, data: Uint8Array, e: unknown): void {
    const where = `nats stream '${this.options.stream}' subject '${subject}'`;
    if (this.deadLetters === undefined) {
      const err = new BadRecordError({ file: where, line: seq }, reason(e), e);
      err.message = `malformed message in ${where} at sequence ${seq}: ${reason(e)}`;
      throw err;
    }
    this.deadLetters.write({ file: where, line: seq, error: reason(e), raw: utf8.decode(data) });
  }

  private anyBuffered(): boolean {
    for (const s of this.splits) if (s.fetcher !== undefined && s.fetcher.buffered > 0) return true;
    return false;
  }

  /** Nothing buffered: finish exhausted splits; end when all are done, else idle. */
  private settle(): PollResult {
    this.finishDone();
    if (this.unfinished === 0 && this.noMoreSplits) return this.end();
    return 'idle';
  }

  /** Finishes bounded splits whose fetcher has handed out everything up to the bound. */
  private finishDone(): void {
    for (const split of this.splits) {
      const f = split.fetcher;
      if (f === undefined || !f.done) continue;
      split.fetcher = undefined;
      split.state.finished = true;
      this.unfinished--;
      this.ctx.splits.finish(split.handle);
      this.closing.push(f.close());
      this.updateRate();
    }
  }

  private end(): 'end' {
    this.ended = true;
    return 'end';
  }

  /** Writes every subject's position (fresh copies: the backend may keep them). */
  snapshotState(_checkpointId: number): void {
    this.state.update(this.splits.map(({ state }) => ({ ...state })));
  }

  async close(): Promise<void> {
    const fetchers = this.splits.flatMap((s) => (s.fetcher === undefined ? [] : [s.fetcher]));
    for (const s of this.splits) s.fetcher = undefined;
    try {
      // Server up: delete the consumers first. Away: closing the connection fails the requests
      // in flight, so nothing waits for their timeouts.
      await Promise.allSettled([...this.closing, ...fetchers.map((f) => f.close())]);
    } finally {
      await this.link?.close();
      await Promise.allSettled(fetchers.map((f) => f.settled()));
      this.deadLetters?.close();
    }
  }
}
