/**
 * The window operator against a straightforward model: for random keyed records interleaved
 * with watermarks (or clock advances), the model computes each window's results directly
 * (assign, merge sessions, fire when time passes the window end, drop or side-output late
 * records) and the operator must produce the same results after every input element — also
 * when its state is snapshotted mid-stream and restored into one backend or split over two
 * (a rescale).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignToKeyGroup } from '../../keygroups/index.js';
import {
  BACKENDS,
  disposeBackends,
  propertyRuns,
  type TestBackend,
} from '../../state/backend.testkit.js';
import type { AggregateFunction } from '../../state/types.js';
import { MAX_WATERMARK, OutputTag } from '../time.js';
import {
  EventTimeSessionWindows,
  ProcessingTimeSessionWindows,
  SlidingEventTimeWindows,
  SlidingProcessingTimeWindows,
  type TimeWindow,
  TumblingEventTimeWindows,
  TumblingProcessingTimeWindows,
  type WindowAssigner,
} from './assigners.js';
import type { ProcessWindowFunction } from './functions.js';
import type { WindowFunctionSpec, WindowOperatorOptions } from './window-operator.js';
import { type Harness, ManualClock, openWindowOperator } from './window-operator.testkit.js';

interface Rec {
  readonly k: string;
  readonly t: number;
  readonly v: number;
}

type Op =
  | { readonly kind: 'record'; readonly k: string; readonly t: number; readonly v: number }
  | { readonly kind: 'time'; readonly t: number };

type AssignerSpec =
  | { readonly kind: 'tumbling'; readonly size: number; readonly offset: number }
  | {
      readonly kind: 'sliding';
      readonly size: number;
      readonly slide: number;
      readonly offset: number;
    }
  | { readonly kind: 'session'; readonly gap: number };

type FnKind = 'reduce' | 'aggregate' | 'process' | 'aggregate+window';

interface Config {
  readonly assigner: AssignerSpec;
  readonly fn: FnKind;
  readonly lateness: number;
  readonly sideOutput: boolean;
}

const LATE = new OutputTag<Rec>('late');

const assignerArb: fc.Arbitrary<AssignerSpec> = fc.oneof(
  fc.integer({ min: 1, max: 15 }).chain((size) =>
    fc.record({
      kind: fc.constant('tumbling' as const),
      size: fc.constant(size),
      offset: fc.integer({ min: -(size - 1), max: size - 1 }),
    }),
  ),
  fc
    .tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4 }))
    .chain(([slide, factor]) =>
      fc.record({
        kind: fc.constant('sliding' as const),
        size: fc.integer({ min: 1, max: slide * factor + 3 }),
        slide: fc.constant(slide),
        offset: fc.integer({ min: -(slide - 1), max: slide - 1 }),
      }),
    ),
  fc.record({ kind: fc.constant('session' as const), gap: fc.integer({ min: 1, max: 10 }) }),
);

const configArb = (eventTime: boolean, assigner = assignerArb): fc.Arbitrary<Config> =>
  fc.record({
    assigner,
    fn: fc.constantFrom<FnKind>('reduce', 'aggregate', 'process', 'aggregate+window'),
    lateness: eventTime
      ? fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 }))
      : fc.constant(0),
    sideOutput: fc.boolean(),
  });

const recordArb = fc.record({
  kind: fc.constant('record' as const),
  k: fc.constantFrom('a', 'a', 'b', 'c'),
  t: fc.integer({ min: -20, max: 40 }),
  v: fc.integer({ min: 0, max: 99 }),
});

/** Event time: records and watermarks (not necessarily increasing: the operator keeps the max). */
const eventOpsArb: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: recordArb },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('time' as const),
        t: fc.integer({ min: -25, max: 45 }),
      }),
    },
  ),
  { maxLength: 60 },
);

/** Processing time: records (their `t` is ignored) and clock advances. */
const processingOpsArb: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: recordArb },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('time' as const),
        t: fc.integer({ min: 0, max: 12 }),
      }),
    },
  ),
  { maxLength: 60 },
);

const makeAssigner = (spec: AssignerSpec, eventTime: boolean): WindowAssigner => {
  switch (spec.kind) {
    case 'tumbling':
      return eventTime
        ? TumblingEventTimeWindows.of(spec.size, spec.offset)
        : TumblingProcessingTimeWindows.of(spec.size, spec.offset);
    case 'sliding':
      return eventTime
        ? SlidingEventTimeWindows.of(spec.size, spec.slide, spec.offset)
        : SlidingProcessingTimeWindows.of(spec.size, spec.slide, spec.offset);
    case 'session':
      return eventTime
        ? EventTimeSessionWindows.withGap(spec.gap)
        : ProcessingTimeSessionWindows.withGap(spec.gap);
  }
};

// --- The functions under test, and what each emits for a window (the model's side). ---

interface Acc {
  readonly k: string;
  readonly count: number;
  readonly sum: number;
}

const aggregate: AggregateFunction<Rec, Acc, Acc> = {
  createAccumulator: () => ({ k: '', count: 0, sum: 0 }),
  add: (r, acc) => ({ k: r.k, count: acc.count + 1, sum: acc.sum + r.v }),
  getResult: (acc) => acc,
  merge: (a, b) => ({ k: a.k || b.k, count: a.count + b.count, sum: a.sum + b.sum }),
};

const withWindow: ProcessWindowFunction<Acc, unknown, string> = {
  process(key, ctx, [acc], out) {
    out.collect({
      key,
      start: ctx.window.start,
      end: ctx.window.end,
      count: acc!.count,
      sum: acc!.sum,
    });
  },
};

const listing: ProcessWindowFunction<Rec, unknown, string> = {
  process(key, ctx, elements, out) {
    out.collect({
      key,
      start: ctx.window.start,
      end: ctx.window.end,
      values: elements.map((e) => e.v),
    });
  },
};

const spec = (fn: FnKind): WindowFunctionSpec<Rec, unknown, unknown, string> => {
  switch (fn) {
    case 'reduce':
      return {
        kind: 'reduce',
        reduce: (a, b) => ({ k: a.k, t: Math.min(a.t, b.t), v: a.v + b.v }),
      };
    case 'aggregate':
      return { kind: 'aggregate', aggregate };
    case 'aggregate+window':
      return {
        kind: 'aggregate',
        aggregate,
        window: withWindow as ProcessWindowFunction<unknown, unknown, string>,
      };
    case 'process':
      return { kind: 'process', process: listing };
  }
};

/** What the model expects a window with these records (in arrival order) to emit. */
const expectedResult = (fn: FnKind, key: string, w: TimeWindow, recs: readonly Rec[]): unknown => {
  const sum = recs.reduce((s, r) => s + r.v, 0);
  switch (fn) {
    case 'reduce':
      return { k: key, t: Math.min(...recs.map((r) => r.t)), v: sum };
    case 'aggregate':
      return { k: key, count: recs.length, sum };
    case 'aggregate+window':
      return { key, start: w.start, end: w.end, count: recs.length, sum };
    case 'process':
      return { key, start: w.start, end: w.end, values: recs.map((r) => r.v) };
  }
};

// --- The model. ---

interface ModelWindow {
  window: TimeWindow;
  /** [arrival seq, record], in arrival order. */
  recs: Array<[number, Rec]>;
}

/** What one input element produced: main outputs, late side outputs, dropped records. */
interface Batch {
  out: unknown[];
  late: Rec[];
  dropped: number;
}

class Model {
  private readonly windows = new Map<string, ModelWindow[]>();
  private time = Number.NEGATIVE_INFINITY;
  private seq = 0;

  constructor(
    private readonly config: Config,
    private readonly assigner: WindowAssigner,
    private readonly eventTime: boolean,
  ) {}

  private cleanup(w: TimeWindow): number {
    return w.maxTimestamp + (this.eventTime ? this.config.lateness : 0);
  }

  private emit(batch: Batch, key: string, mw: ModelWindow): void {
    const recs = mw.recs.map(([, r]) => r);
    batch.out.push(expectedResult(this.config.fn, key, mw.window, recs));
  }

  /** `t` is the record's event time, or the clock now in processing time. */
  record(r: Rec, t: number): Batch {
    const batch: Batch = { out: [], late: [], dropped: 0 };
    const seq = this.seq++;
    const ws = this.windows.get(r.k) ?? [];
    this.windows.set(r.k, ws);
    // Event time: late if past cleanup (the watermark is this.time). Processing: never.
    const late = (w: TimeWindow) => this.eventTime && this.cleanup(w) <= this.time;
    let added = false;
    if (this.assigner.isMerging) {
      let cover = this.assigner.assignWindows(t)[0]!;
      const hit: ModelWindow[] = [];
      for (let changed = true; changed; ) {
        changed = false;
        for (const mw of ws) {
          if (!hit.includes(mw) && cover.intersects(mw.window)) {
            hit.push(mw);
            cover = cover.cover(mw.window);
            changed = true;
          }
        }
      }
      if (!late(cover)) {
        added = true;
        const recs = hit.flatMap((h) => h.recs).sort((a, b) => a[0] - b[0]);
        recs.push([seq, r]);
        const merged = { window: cover, recs };
        for (const h of hit) ws.splice(ws.indexOf(h), 1);
        ws.push(merged);
        if (this.eventTime && cover.maxTimestamp <= this.time) this.emit(batch, r.k, merged);
      }
    } else {
      const assigned = this.assigner
        .assignWindows(t)
        .sort((a, b) => a.end - b.end || a.start - b.start);
      for (const w of assigned) {
        if (late(w)) continue;
        added = true;
        let mw = ws.find((x) => x.window.equals(w));
        if (mw === undefined) {
          mw = { window: w, recs: [] };
          ws.push(mw);
        }
        mw.recs.push([seq, r]);
        if (this.eventTime && w.maxTimestamp <= this.time) this.emit(batch, r.k, mw);
      }
    }
    // Late: in no window because all of them are past cleanup (sliding windows with
    // size < slide leave timestamps in no window at all: those are not late).
    const isLate = this.eventTime && t + this.config.lateness <= this.time;
    if (!added && isLate) {
      if (this.config.sideOutput) batch.late.push(r);
      else batch.dropped++;
    }
    return batch;
  }

  /** The watermark (event time) or the clock (processing time) moves to `t`. */
  advance(t: number): Batch {
    const batch: Batch = { out: [], late: [], dropped: 0 };
    const previous = this.time;
    // Watermarks never go back (the operator keeps the largest); the clock neither.
    if (this.eventTime && t <= previous) return batch;
    this.time = Math.max(t, previous);
    for (const [key, ws] of this.windows) {
      for (const mw of ws) {
        const max = mw.window.maxTimestamp;
        // Event time: fires once, when the watermark passes maxTimestamp. Processing time:
        // fires when the clock reaches it (windows are removed when they fire).
        const fires = this.eventTime ? previous < max && max <= t : max <= t;
        if (fires) this.emit(batch, key, mw);
      }
      this.windows.set(
        key,
        ws.filter((mw) => this.cleanup(mw.window) > t),
      );
    }
    return batch;
  }
}

// --- Running the operator. ---

const canonical = (values: readonly unknown[]): string[] =>
  values.map((v) => JSON.stringify(v)).sort();

interface Runner {
  /** Feeds one op to the operator(s) and returns what came out. */
  step(op: Op): Batch;
  harnesses(): Harness<Rec, unknown>[];
}

const operatorOptions = (
  config: Config,
  eventTime: boolean,
): WindowOperatorOptions<string, Rec, unknown, unknown> => ({
  assigner: makeAssigner(config.assigner, eventTime),
  keySelector: (r: Rec) => r.k,
  timestampOf: eventTime ? (r: Rec) => r.t : undefined,
  function: spec(config.fn),
  allowedLateness: config.lateness,
  lateDataTag: config.sideOutput ? LATE : undefined,
});

/** Operators over key-group ranges that partition [0, 127]; records routed by key group. */
const runner = (hs: Harness<Rec, unknown>[], clock: ManualClock, eventTime: boolean): Runner => {
  const dropped = () => hs.reduce((n, h) => n + (h.metrics.snapshot().lateRecordsDropped ?? 0), 0);
  return {
    harnesses: () => hs,
    step(op) {
      const before = dropped();
      if (op.kind === 'record') {
        const kg = assignToKeyGroup(op.k, 128);
        const h = hs.find(
          (x) => x.backend.keyGroupRange.start <= kg && kg <= x.backend.keyGroupRange.end,
        )!;
        h.operator.processRecord({ k: op.k, t: op.t, v: op.v });
      } else if (eventTime) {
        for (const h of hs) h.operator.processWatermark(op.t);
      } else {
        clock.advanceTo(clock.now() + op.t);
      }
      const batch: Batch = { out: [], late: [], dropped: dropped() - before };
      for (const h of hs) {
        for (const e of h.take()) {
          if (e.kind === 'out') batch.out.push(e.value);
          else if (e.kind === 'side') batch.late.push(e.value as Rec);
        }
      }
      return batch;
    },
  };
};

/** Firings of one element come in timer order: by window end (maxTimestamp), per key by start. */
const checkOrder = (out: readonly unknown[]): void => {
  const windows = out as Array<{ key: string; start: number; end: number }>;
  for (let i = 1; i < windows.length; i++) {
    const [a, b] = [windows[i - 1]!, windows[i]!];
    expect(a.end).toBeLessThanOrEqual(b.end);
    if (a.key === b.key && a.end === b.end) expect(a.start).toBeLessThan(b.start);
  }
};

const ranged = (fn: FnKind) => fn === 'process' || fn === 'aggregate+window';

/**
 * Runs `ops` through the model and the operator; at `cut` (if given) snapshots the operator's
 * state and continues in fresh operators restored from it over `split` key-group ranges.
 */
const check = async (
  backend: TestBackend,
  config: Config,
  ops: readonly Op[],
  eventTime: boolean,
  restore?: { cut: number; split: boolean },
): Promise<void> => {
  const opts = operatorOptions(config, eventTime);
  const model = new Model(config, opts.assigner, eventTime);
  const clock = new ManualClock(0);
  let run = runner(
    [await openWindowOperator<Rec, unknown>(opts, { clock, backend })],
    clock,
    eventTime,
  );
  let watermark = Number.NEGATIVE_INFINITY;
  const all = eventTime ? [...ops, { kind: 'time', t: MAX_WATERMARK } as const] : ops;
  for (let i = 0; i < all.length; i++) {
    if (restore !== undefined && i === restore.cut) {
      const snapshot = run.harnesses()[0]!.backend.snapshot();
      const ranges = restore.split
        ? [
            { start: 0, end: 63 },
            { start: 64, end: 127 },
          ]
        : [{ start: 0, end: 127 }];
      const hs: Harness<Rec, unknown>[] = [];
      for (const keyGroupRange of ranges) {
        hs.push(
          await openWindowOperator<Rec, unknown>(operatorOptions(config, eventTime), {
            clock,
            keyGroupRange,
            restore: snapshot,
            backend,
          }),
        );
      }
      await run.harnesses()[0]!.operator.close();
      run = runner(hs, clock, eventTime);
      if (eventTime && watermark > Number.NEGATIVE_INFINITY) {
        // Watermarks are not state: after a restore the sources send them again.
        const resent = run.step({ kind: 'time', t: watermark });
        expect(resent).toEqual({ out: [], late: [], dropped: 0 });
      }
    }
    const op = all[i]!;
    let expected: Batch;
    if (op.kind === 'record') {
      expected = model.record({ k: op.k, t: op.t, v: op.v }, eventTime ? op.t : clock.now());
    } else {
      watermark = Math.max(watermark, op.t);
      expected = model.advance(eventTime ? op.t : clock.now() + op.t);
    }
    const actual = run.step(op);
    const where = `at op ${i} (${JSON.stringify(op)})`;
    expect(canonical(actual.out), where).toEqual(canonical(expected.out));
    expect(actual.late, where).toEqual(expected.late);
    expect(actual.dropped, where).toBe(expected.dropped);
    if (ranged(config.fn) && restore === undefined) checkOrder(actual.out);
  }
  if (eventTime) {
    // After the final watermark every window is cleaned up: no contents, no timers.
    for (const h of run.harnesses()) expect(h.backend.numEntries()).toBe(0);
  }
};

describe.each(BACKENDS)('$name backend: window operator against a model', (backend) => {
  it('event time: tumbling, sliding and session windows with every function kind', async () => {
    await fc.assert(
      fc.asyncProperty(configArb(true), eventOpsArb, (config, ops) =>
        check(backend, config, ops, true),
      ),
      { numRuns: propertyRuns(backend, 400), plugins: [fc.afterEach(disposeBackends)] },
    );
  });

  it('event time, sessions only: merges (bridging events, arrival order, timers)', async () => {
    const sessions = fc.record({
      kind: fc.constant('session' as const),
      gap: fc.integer({ min: 1, max: 10 }),
    });
    await fc.assert(
      fc.asyncProperty(configArb(true, sessions), eventOpsArb, (config, ops) =>
        check(backend, config, ops, true),
      ),
      { numRuns: propertyRuns(backend, 400), plugins: [fc.afterEach(disposeBackends)] },
    );
  });

  it('processing time: fires on the clock', async () => {
    await fc.assert(
      fc.asyncProperty(configArb(false), processingOpsArb, (config, ops) =>
        check(backend, config, ops, false),
      ),
      { numRuns: propertyRuns(backend, 200), plugins: [fc.afterEach(disposeBackends)] },
    );
  });

  it('continues from a mid-stream snapshot, restored whole or split over two key-group ranges', async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb(true),
        eventOpsArb,
        fc.nat(),
        fc.boolean(),
        (config, ops, at, split) =>
          check(backend, config, ops, true, { cut: at % (ops.length + 1), split }),
      ),
      { numRuns: propertyRuns(backend, 300), plugins: [fc.afterEach(disposeBackends)] },
    );
  });

  it('processing time continues from a snapshot too', async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb(false),
        processingOpsArb,
        fc.nat(),
        fc.boolean(),
        (config, ops, at, split) =>
          check(backend, config, ops, false, { cut: at % (ops.length + 1), split }),
      ),
      { numRuns: propertyRuns(backend, 150), plugins: [fc.afterEach(disposeBackends)] },
    );
  });
});
