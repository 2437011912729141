/**
 * Test helpers for connectors: an in-memory operator state store, a fake connector context,
 * a fake clock, and drivers that run a reader the way the runtime does (its split enumerator
 * too, through `SourceCoordinators`). Not part of the public API (import from
 * `connectors/testing.js`).
 */
import type { SubtaskRef } from '../core/errors.js';
import type {
  ConnectorContext,
  MetricGroup,
  PollResult,
  Source,
  SourceReader,
  SourceSplits,
} from '../runtime/io.js';
import type { ReaderEvent } from '../runtime/protocol.js';
import { SourceCoordinators } from '../runtime/source-coordinators.js';
import type { OperatorListState, OperatorStateStore, RedistributionMode } from '../state/types.js';
import type { ConnectorClock } from './rate-limiter.js';

/**
 * Operator list state kept in memory. Elements are deep-copied in and out (`structuredClone`),
 * as a real backend serialises them, so aliasing bugs in connectors show up in tests.
 *
 * @example
 * const store = new FakeOperatorStateStore({ 'file-splits': [{ file: 'a', offset: 0, line: 0, finished: false }] });
 * store.getListState('file-splits').get();
 */
export class FakeOperatorStateStore implements OperatorStateStore {
  private readonly lists = new Map<string, { mode: RedistributionMode; elements: unknown[] }>();

  constructor(initial: Record<string, readonly unknown[]> = {}) {
    for (const [name, elements] of Object.entries(initial)) {
      this.lists.set(name, { mode: 'split', elements: structuredClone([...elements]) });
    }
  }

  getListState<T>(name: string, mode: RedistributionMode = 'split'): OperatorListState<T> {
    let list = this.lists.get(name);
    if (list === undefined) {
      list = { mode, elements: [] };
      this.lists.set(name, list);
    }
    const l = list;
    l.mode = mode;
    return {
      mode,
      get: () => structuredClone(l.elements) as T[],
      add: (v) => void l.elements.push(structuredClone(v)),
      addAll: (vs) => void l.elements.push(...structuredClone([...vs])),
      update: (vs) => {
        l.elements = structuredClone([...vs]);
      },
      clear: () => {
        l.elements = [];
      },
    };
  }

  /** A copy of the elements stored under `name` (empty if none). */
  elements<T>(name: string): T[] {
    return structuredClone(this.lists.get(name)?.elements ?? []) as T[];
  }

  /** The redistribution mode `name` was last used with (undefined if never). */
  modeOf(name: string): RedistributionMode | undefined {
    return this.lists.get(name)?.mode;
  }
}

/**
 * Split bookkeeping that records what a reader declares and finishes, and fails loudly on
 * misuse (finishing an unknown split or one twice, declaring an id twice) so reader bugs show
 * up in tests. Handles are 0, 1, 2, ... like the runtime's.
 *
 * @example
 * const ctx = createTestContext();
 * // ... open and drain a reader ...
 * ctx.splits.ids; // ['a.jsonl', 'b.jsonl']
 * ctx.splits.finished; // [1, 0]: handles in the order they were finished
 */
export class RecordingSplits implements SourceSplits {
  /** Declared split ids; the index is the handle. */
  readonly ids: string[] = [];
  /** Finished handles, in the order `finish` was called. */
  readonly finished: number[] = [];
  /** Every call in order, e.g. `add a.jsonl` -> 0, `finish 0`. */
  readonly calls: string[] = [];

  /** `watermarked`: whether the job tracks split watermarks (readers then interleave). */
  constructor(readonly watermarked = true) {}

  add(id: string): number {
    if (this.ids.includes(id)) throw new Error(`split '${id}' declared twice`);
    this.ids.push(id);
    this.calls.push(`add ${id}`);
    return this.ids.length - 1;
  }

  finish(handle: number): void {
    if (this.ids[handle] === undefined) throw new Error(`finish of unknown split ${handle}`);
    if (this.finished.includes(handle)) throw new Error(`split ${handle} finished twice`);
    this.finished.push(handle);
    this.calls.push(`finish ${handle}`);
  }

  /** Whether `handle` was declared and not finished yet. */
  isOpen(handle: number): boolean {
    return this.ids[handle] !== undefined && !this.finished.includes(handle);
  }
}

export interface TestContextOptions {
  subtaskIndex?: number;
  parallelism?: number;
  operatorName?: string;
  /** Operator state to restore from; when given, `isRestored` is true. */
  restoredState?: Record<string, readonly unknown[]>;
  /** Whether the job takes checkpoints (two-phase-commit sinks); default false. */
  checkpointing?: boolean;
  /** Whether split watermarks are tracked (`ctx.splits.watermarked`); default true. */
  watermarked?: boolean;
  /** `ctx.jobName`; default `test-job`. */
  jobName?: string;
}

export interface TestConnectorContext extends ConnectorContext {
  readonly operatorState: FakeOperatorStateStore;
  /** Counter values by name. */
  readonly counters: Map<string, number>;
  /** What the reader declared and finished through `ctx.splits`. */
  readonly splits: RecordingSplits;
  /** Every event the reader sent with `ctx.sendSourceEvent`, in order. */
  readonly sentSourceEvents: unknown[];
  /**
   * Where `ctx.sendSourceEvent` forwards events (besides recording them); set by
   * {@link openSourceReader} to the source's enumerator.
   */
  onSourceEvent: ((event: unknown) => void) | undefined;
  /** Number of `ctx.wakeup()` calls so far. */
  wakeups(): number;
  /**
   * Resolves at the next `ctx.wakeup()` (at once if one came since the last wait) or after
   * `ms`, like the runtime's wait after an `'idle'` poll.
   */
  waitForWakeup(ms: number): Promise<void>;
  /** Fires the stop signal. */
  stop(): void;
}

/**
 * A connector context for tests: in-memory state, counters in a map, a stop signal to fire.
 *
 * @example
 * const ctx = createTestContext({ subtaskIndex: 1, parallelism: 3 });
 * const reader = source.createReader(ctx);
 */
export const createTestContext = (options: TestContextOptions = {}): TestConnectorContext => {
  const subtask: SubtaskRef = {
    operatorName: options.operatorName ?? 'test-operator',
    operatorUid: `${options.operatorName ?? 'test-operator'}-uid`,
    subtaskIndex: options.subtaskIndex ?? 0,
    parallelism: options.parallelism ?? 1,
  };
  const counters = new Map<string, number>();
  const metrics: MetricGroup = {
    counter: (name) => ({ inc: (n = 1) => void counters.set(name, (counters.get(name) ?? 0) + n) }),
  };
  const controller = new AbortController();
  let wakeups = 0;
  /** A wake-up not consumed by a wait yet (wake-ups before a wait are not lost). */
  let pendingWakeup = false;
  let waiter: (() => void) | undefined;
  const sentSourceEvents: unknown[] = [];
  const ctx: TestConnectorContext = {
    subtask,
    jobName: options.jobName ?? 'test-job',
    operatorState: new FakeOperatorStateStore(options.restoredState),
    isRestored: options.restoredState !== undefined,
    stopSignal: controller.signal,
    metrics,
    checkpointing: options.checkpointing ?? false,
    splits: new RecordingSplits(options.watermarked ?? true),
    counters,
    wakeup: () => {
      wakeups++;
      pendingWakeup = true;
      waiter?.();
    },
    sendSourceEvent: (event) => {
      sentSourceEvents.push(event);
      ctx.onSourceEvent?.(event);
    },
    sentSourceEvents,
    onSourceEvent: undefined,
    wakeups: () => wakeups,
    waitForWakeup: (ms) =>
      new Promise<void>((resolve) => {
        if (pendingWakeup || controller.signal.aborted) {
          pendingWakeup = false;
          resolve();
          return;
        }
        const done = () => {
          clearTimeout(timer);
          controller.signal.removeEventListener('abort', done);
          waiter = undefined;
          pendingWakeup = false;
          resolve();
        };
        const timer = setTimeout(done, ms);
        controller.signal.addEventListener('abort', done);
        waiter = done;
      }),
    stop: () => controller.abort(),
  };
  return ctx;
};

/** Back-off after an `'idle'` poll when nothing wakes the reader (the runtime's is similar). */
const IDLE_BACKOFF_MS = 5;

export interface OpenSourceReaderOptions {
  /**
   * The enumerator state stored in the checkpoint being restored (for a source with an
   * enumerator; whether readers restore is `ctx.isRestored`). Default: none.
   */
  enumeratorState?: unknown;
}

/**
 * A reader opened the way the runtime opens one, with the source's split enumerator running
 * beside it: what the enumerator sends this subtask is delivered between polls, and what the
 * reader sends (`ctx.sendSourceEvent`) reaches the enumerator. Use it like the reader itself.
 */
export class DrivenSourceReader<T> implements SourceReader<T> {
  /** Events from the enumerator not delivered yet. */
  private readonly inbox: ReaderEvent[] = [];
  /** Every event the enumerator sent this subtask, in order. */
  readonly received: ReaderEvent[] = [];

  constructor(
    readonly reader: SourceReader<T>,
    readonly ctx: TestConnectorContext,
    /** The enumerator host, undefined for a source without an enumerator. */
    readonly coordinators: SourceCoordinators | undefined,
  ) {}

  /** Queues an event for this reader (the coordinators' `send` for this subtask). */
  enqueue(event: ReaderEvent): void {
    this.received.push(event);
    this.inbox.push(event);
    this.ctx.wakeup(); // a control action wakes an idle subtask too
  }

  /** Delivers the queued enumerator events, as the runtime does between polls. */
  deliver(): void {
    while (this.inbox.length > 0) {
      const event = this.inbox.shift()!;
      if (event.kind === 'splits') this.reader.addSplits?.(event.splits);
      else if (event.kind === 'noMoreSplits') this.reader.notifyNoMoreSplits?.();
      else this.reader.handleSourceEvent?.(event.event);
    }
  }

  /** A no-op: {@link openSourceReader} opened the reader already. */
  async open(): Promise<void> {}

  poll(emit: (record: T, split?: number) => void, maxRecords: number): Promise<PollResult> {
    this.deliver();
    return this.reader.poll(emit, maxRecords);
  }

  /** What the runtime does after an `'idle'` poll: wait for a wake-up or a short back-off. */
  idle(): Promise<void> {
    if (this.inbox.length > 0) return Promise.resolve();
    return this.ctx.waitForWakeup(IDLE_BACKOFF_MS);
  }

  snapshotState(checkpointId: number): void {
    this.deliver(); // like a poll boundary: events sent before the checkpoint come first
    this.reader.snapshotState(checkpointId);
  }

  async snapshotStateAsync(checkpointId: number): Promise<void> {
    await this.reader.snapshotStateAsync?.(checkpointId);
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    this.coordinators?.notifyCheckpointComplete(checkpointId);
    await this.reader.notifyCheckpointComplete?.(checkpointId);
  }

  async notifyCheckpointAborted(checkpointId: number): Promise<void> {
    await this.reader.notifyCheckpointAborted?.(checkpointId);
  }

  /** Closes the reader, then the enumerator. */
  async close(): Promise<void> {
    try {
      await this.reader.close();
    } finally {
      this.ctx.onSourceEvent = undefined;
      await this.coordinators?.close();
    }
  }
}

/**
 * Creates and opens a reader for subtask `ctx.subtask` and, when the source has a split
 * enumerator, runs it for the subtask's parallelism (isRestored as `ctx.isRestored`), starts
 * it after the reader opened and delivers this subtask's assignments before returning, as the
 * runtime does before the first poll. Assignments for the other subtasks are dropped: open
 * their readers with their own contexts.
 *
 * @example
 * const reader = await openSourceReader(FileSource.jsonl({ path: dir }), createTestContext());
 * const records = await pollAll(reader);
 * await reader.close();
 */
export const openSourceReader = async <T>(
  source: Source<T>,
  ctx: TestConnectorContext,
  options: OpenSourceReaderOptions = {},
): Promise<DrivenSourceReader<T>> => {
  const reader = source.createReader(ctx);
  const { operatorUid, operatorName, subtaskIndex, parallelism } = ctx.subtask;
  let driven: DrivenSourceReader<T> | undefined;
  const coordinators =
    source.createEnumerator === undefined
      ? undefined
      : new SourceCoordinators(
          [
            {
              uid: operatorUid,
              name: operatorName,
              source: source as Source<unknown>,
              parallelism,
              isRestored: ctx.isRestored,
              restoredState: options.enumeratorState,
            },
          ],
          (_uid, subtask, event) => {
            if (subtask === subtaskIndex) driven!.enqueue(event);
          },
        );
  driven = new DrivenSourceReader(reader, ctx, coordinators);
  try {
    await reader.open();
    if (coordinators !== undefined) {
      ctx.onSourceEvent = (event) =>
        coordinators.handleReaderEvent(operatorUid, subtaskIndex, event);
      await coordinators.start();
    }
    driven.deliver();
  } catch (e) {
    await reader.close().catch(() => undefined);
    await coordinators?.close().catch(() => undefined);
    throw e;
  }
  return driven;
};

/**
 * How long a driver lets a reader poll `'idle'` in a row before failing the test: a reader
 * that idles with nothing left to wake it would otherwise hang until the test times out.
 */
const IDLE_LIMIT_MS = 2000;

/**
 * After an `'idle'` poll: waits as the runtime does (a wake-up or a back-off; events from a
 * {@link DrivenSourceReader}'s enumerator count as wake-ups). `since` is when the reader
 * started idling.
 */
const waitAfterIdle = async <T>(reader: SourceReader<T>, since: number): Promise<void> => {
  if (performance.now() - since > IDLE_LIMIT_MS) {
    throw new Error(`reader polled 'idle' for ${IDLE_LIMIT_MS} ms with nothing waking it`);
  }
  if (reader instanceof DrivenSourceReader) await reader.idle();
  else await new Promise((resolve) => setTimeout(resolve, IDLE_BACKOFF_MS));
};

/**
 * Polls an opened reader until it ends (or `maxPolls` polls, `'idle'` ones included),
 * collecting what it emits. After an `'idle'` poll it waits like the runtime.
 *
 * @example
 * const records = await pollAll(reader, 100);
 */
export const pollAll = async <T>(
  reader: SourceReader<T>,
  maxRecords = 1000,
  maxPolls = Number.POSITIVE_INFINITY,
): Promise<T[]> => {
  const out: T[] = [];
  const emit = (r: T) => void out.push(r);
  let idleSince: number | undefined;
  for (let i = 0; i < maxPolls; i++) {
    const result = await reader.poll(emit, maxRecords);
    if (result === 'end') break;
    if (result === 'idle') {
      idleSince ??= performance.now();
      if (i + 1 < maxPolls) await waitAfterIdle(reader, idleSince);
    } else idleSince = undefined;
  }
  return out;
};

/** What one poll emitted: the records, and the split handle passed with each. */
export interface PolledBatch<T> {
  readonly records: T[];
  readonly splits: (number | undefined)[];
  readonly result: PollResult;
}

/**
 * Polls an opened reader until it ends (or `maxPolls` polls, `'idle'` ones included), keeping
 * each poll's records and the split handles they came with. Waits like the runtime after an
 * `'idle'` poll.
 *
 * @example
 * const batches = await pollBatches(reader, 10);
 * batches[0]!.splits; // [0, 0, 0, ...]: the first batch came from split 0
 */
export const pollBatches = async <T>(
  reader: SourceReader<T>,
  maxRecords = 1000,
  maxPolls = Number.POSITIVE_INFINITY,
): Promise<PolledBatch<T>[]> => {
  const out: PolledBatch<T>[] = [];
  let idleSince: number | undefined;
  for (let i = 0; i < maxPolls; i++) {
    const records: T[] = [];
    const splits: (number | undefined)[] = [];
    const result = await reader.poll((r, split) => {
      records.push(r);
      splits.push(split);
    }, maxRecords);
    out.push({ records, splits, result });
    if (result === 'end') break;
    if (result === 'idle') {
      idleSince ??= performance.now();
      if (i + 1 < maxPolls) await waitAfterIdle(reader, idleSince);
    } else idleSince = undefined;
  }
  return out;
};

/**
 * Runs a source to its end in one subtask, its split enumerator included (see
 * {@link openSourceReader}), and returns the records (opens and closes the reader).
 *
 * @example
 * const all = await drainSource(FileSource.jsonl({ path: dir }), createTestContext());
 */
export const drainSource = async <T>(
  source: Source<T>,
  ctx: TestConnectorContext,
  maxRecords = 1000,
  options: OpenSourceReaderOptions = {},
): Promise<T[]> => {
  const reader = await openSourceReader(source, ctx, options);
  try {
    return await pollAll(reader, maxRecords);
  } finally {
    await reader.close();
  }
};

/**
 * Deals `elements` in contiguous runs to `parallelism` subtasks (sizes differ by at most one),
 * like `split` redistribution on restore.
 *
 * @example
 * dealContiguous([1, 2, 3, 4, 5], 2); // [[1, 2, 3], [4, 5]]
 */
export const dealContiguous = <E>(elements: readonly E[], parallelism: number): E[][] => {
  const out: E[][] = [];
  for (let i = 0; i < parallelism; i++) {
    const from = Math.floor((i * elements.length) / parallelism);
    const to = Math.floor(((i + 1) * elements.length) / parallelism);
    out.push(elements.slice(from, to));
  }
  return out;
};

/**
 * A manual clock: `sleep` advances time instantly, so rate-limited code runs without real
 * waiting and the elapsed virtual time can be asserted exactly.
 *
 * @example
 * const clock = new FakeClock();
 * await clock.sleep(250, signal); // clock.now() === 250
 */
export class FakeClock implements ConnectorClock {
  private t = 0;
  /** Every sleep requested, in ms. */
  readonly sleeps: number[] = [];

  now(): number {
    return this.t;
  }

  async sleep(ms: number, _signal: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }

  advance(ms: number): void {
    this.t += ms;
  }
}
