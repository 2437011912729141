/**
 * Test helpers for connectors: an in-memory operator state store, a fake connector context,
 * a fake clock, and drivers that run a reader the way the runtime does. Not part of the
 * public API (import from `connectors/testing.js`).
 */
import type { SubtaskRef } from '../core/errors.js';
import type {
  ConnectorContext,
  MetricGroup,
  Source,
  SourceReader,
  SourceSplits,
} from '../runtime/io.js';
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
}

export interface TestConnectorContext extends ConnectorContext {
  readonly operatorState: FakeOperatorStateStore;
  /** Counter values by name. */
  readonly counters: Map<string, number>;
  /** What the reader declared and finished through `ctx.splits`. */
  readonly splits: RecordingSplits;
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
  return {
    subtask,
    operatorState: new FakeOperatorStateStore(options.restoredState),
    isRestored: options.restoredState !== undefined,
    stopSignal: controller.signal,
    metrics,
    checkpointing: options.checkpointing ?? false,
    splits: new RecordingSplits(options.watermarked ?? true),
    counters,
    stop: () => controller.abort(),
  };
};

/**
 * Polls an opened reader until it ends (or `maxPolls` polls), collecting what it emits.
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
  for (let i = 0; i < maxPolls; i++) {
    if ((await reader.poll(emit, maxRecords)) === 'end') break;
  }
  return out;
};

/** What one poll emitted: the records, and the split handle passed with each. */
export interface PolledBatch<T> {
  readonly records: T[];
  readonly splits: (number | undefined)[];
  readonly result: 'more' | 'end';
}

/**
 * Polls an opened reader until it ends (or `maxPolls` polls), keeping each poll's records and
 * the split handles they came with.
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
  for (let i = 0; i < maxPolls; i++) {
    const records: T[] = [];
    const splits: (number | undefined)[] = [];
    const result = await reader.poll((r, split) => {
      records.push(r);
      splits.push(split);
    }, maxRecords);
    out.push({ records, splits, result });
    if (result === 'end') break;
  }
  return out;
};

/**
 * Runs a source to its end in one subtask and returns the records (opens and closes the
 * reader).
 *
 * @example
 * const all = await drainSource(FileSource.jsonl({ path: dir }), createTestContext());
 */
export const drainSource = async <T>(
  source: Source<T>,
  ctx: ConnectorContext,
  maxRecords = 1000,
): Promise<T[]> => {
  const reader = source.createReader(ctx);
  await reader.open();
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
