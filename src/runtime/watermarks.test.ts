import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError, InternalError, InvalidArgumentError } from '../core/errors.js';
import { MIN_WATERMARK } from './time.js';
import {
  SourceWatermarks,
  WatermarkStrategy,
  type WatermarkStrategyBuilder,
  type WatermarkTiming,
} from './watermarks.js';

interface Event {
  ts: number;
}

/** A manual processing clock that counts how often it is read. */
class ManualClock {
  t = 0;
  reads = 0;
  now(): number {
    this.reads++;
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

const bounded = (ms: number, idle?: number) => {
  const s = WatermarkStrategy.forBoundedOutOfOrderness<Event>(ms).withTimestampAssigner(
    (e) => e.ts,
  );
  return idle === undefined ? s : s.withIdleness(idle);
};

const setup = (ms = 10, idle?: number) => {
  const clock = new ManualClock();
  return { clock, wm: new SourceWatermarks(bounded(ms, idle), clock) };
};

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
};

describe('WatermarkStrategy', () => {
  it('builds bounded and monotonous strategies with their timing', () => {
    const b = WatermarkStrategy.forBoundedOutOfOrderness<Event>(250);
    expect(b).toMatchObject({ kind: 'bounded', outOfOrdernessMs: 250, idleTimeoutMs: undefined });
    expect('timestampOf' in b).toBe(false);
    const assigner = (e: Event) => e.ts;
    const s = b.withTimestampAssigner(assigner);
    expect(s).toMatchObject({ kind: 'bounded', outOfOrdernessMs: 250, idleTimeoutMs: undefined });
    expect(s.timestampOf).toBe(assigner);
    expect(s.timestampOf({ ts: 42 })).toBe(42);
    const m = WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner(assigner);
    expect(m).toMatchObject({ kind: 'monotonous', outOfOrdernessMs: 0, idleTimeoutMs: undefined });
  });

  it('is immutable: withIdleness returns a new object and leaves the original as it was', () => {
    const s = bounded(5);
    const idle = s.withIdleness(1000);
    expect(idle).not.toBe(s);
    expect(idle.idleTimeoutMs).toBe(1000);
    expect(idle.timestampOf).toBe(s.timestampOf);
    expect(idle.kind).toBe('bounded');
    expect(idle.outOfOrdernessMs).toBe(5);
    expect(s.idleTimeoutMs).toBeUndefined();
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(idle)).toBe(true);
    expect(() => {
      (s as { idleTimeoutMs: number | undefined }).idleTimeoutMs = 3;
    }).toThrow(TypeError);
    // Idleness set on the builder carries over to the strategy.
    const b = WatermarkStrategy.forMonotonousTimestamps<Event>();
    const bIdle = b.withIdleness(30);
    expect(bIdle).not.toBe(b);
    expect(b.idleTimeoutMs).toBeUndefined();
    expect(Object.isFrozen(b)).toBe(true);
    expect(bIdle.withTimestampAssigner((e) => e.ts).idleTimeoutMs).toBe(30);
  });

  it('validates its arguments, naming the argument and the bad value', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => WatermarkStrategy.forBoundedOutOfOrderness(-1), /maxOutOfOrdernessMs .* got -1$/],
      [() => WatermarkStrategy.forBoundedOutOfOrderness(1.5), /maxOutOfOrdernessMs .* got 1.5$/],
      [() => WatermarkStrategy.forBoundedOutOfOrderness(Number.NaN), /maxOutOfOrdernessMs .*NaN/],
      [
        () => WatermarkStrategy.forBoundedOutOfOrderness(Number.POSITIVE_INFINITY),
        /maxOutOfOrdernessMs .* got Infinity$/,
      ],
      [
        () => WatermarkStrategy.forBoundedOutOfOrderness('5' as unknown as number),
        /maxOutOfOrdernessMs .* got "5"$/,
      ],
      [() => bounded(1).withIdleness(0), /idleTimeoutMs must be a positive integer .* got 0$/],
      [() => bounded(1).withIdleness(-5), /idleTimeoutMs .* got -5$/],
      [() => bounded(1).withIdleness(2.5), /idleTimeoutMs .* got 2.5$/],
      [
        () => WatermarkStrategy.forMonotonousTimestamps().withIdleness(Number.NaN),
        /idleTimeoutMs .* got NaN$/,
      ],
      [
        () =>
          WatermarkStrategy.forMonotonousTimestamps().withTimestampAssigner(
            'ts' as unknown as () => number,
          ),
        /timestampOf must be a function .* got "ts"$/,
      ],
      [
        () =>
          WatermarkStrategy.forBoundedOutOfOrderness(0).withTimestampAssigner(
            undefined as unknown as () => number,
          ),
        /timestampOf must be a function .* got undefined$/,
      ],
    ];
    for (const [f, message] of cases) {
      const e = thrown(f);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as EddyError).code).toBe('EDDY_INVALID_ARGUMENT');
      expect((e as Error).message).toMatch(message);
    }
  });
});

describe('SourceWatermarks', () => {
  it('hands out small integer handles in order of declaration', () => {
    const { wm } = setup();
    expect([wm.add('a'), wm.add('b'), wm.add('c')]).toEqual([0, 1, 2]);
  });

  it("rule 1: a split's watermark is MIN_WATERMARK until its first record, then max ts - outOfOrderness - 1", () => {
    const { wm } = setup(10);
    const a = wm.add('a');
    const b = wm.add('b');
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false });
    wm.onRecord(a, 1000);
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false }); // b holds it back
    wm.onRecord(b, 2000);
    expect(wm.current()).toEqual({ watermark: 1000 - 10 - 1, idle: false });
    wm.onRecord(a, 1500);
    expect(wm.current().watermark).toBe(1500 - 11);
    wm.onRecord(a, 5000);
    expect(wm.current().watermark).toBe(2000 - 11);

    const clock = new ManualClock();
    const mono = WatermarkStrategy.forMonotonousTimestamps<Event>().withTimestampAssigner(
      (e) => e.ts,
    );
    const m = new SourceWatermarks(mono, clock);
    const s = m.add('s');
    m.onRecord(s, 700);
    expect(m.current().watermark).toBe(699);
  });

  it("rule 2: a split's watermark never decreases (an older record does not move it back)", () => {
    const { wm } = setup(0);
    const a = wm.add('a');
    const b = wm.add('b');
    wm.onRecord(a, 100);
    wm.onRecord(a, 50); // late within a
    wm.onRecord(b, 200);
    // No current() call before: only the split's own monotonicity keeps a at 99, not 49.
    expect(wm.current().watermark).toBe(99);
  });

  it('rule 3: a split is idle after idleTimeoutMs without records, measured from add() or its last record', () => {
    const { wm, clock } = setup(0, 100);
    const a = wm.add('a');
    clock.advance(50);
    const b = wm.add('b'); // b's silence is measured from t = 50
    wm.onRecord(a, 1000);
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false });
    clock.advance(99); // t = 149: b silent for 99 ms
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false });
    clock.advance(1); // t = 150: b silent for 100 ms -> idle; a silent for 100 ms -> idle too
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: true });
    wm.onRecord(a, 2000); // a active again at t = 150, b still idle
    expect(wm.current()).toEqual({ watermark: 1999, idle: false });
    clock.advance(99);
    wm.onRecord(a, 3000); // t = 249: a's silence restarts
    clock.advance(99); // t = 348: a silent 99 ms, still active
    expect(wm.current()).toEqual({ watermark: 2999, idle: false });
    wm.onRecord(b, 2500); // b active again: excluded no more
    expect(wm.current()).toEqual({ watermark: 2999, idle: false }); // rule 5: stays
    wm.onRecord(b, 4000);
    expect(wm.current()).toEqual({ watermark: 2999, idle: false }); // a (2999) is the minimum
    wm.onRecord(a, 5000);
    expect(wm.current()).toEqual({ watermark: 3999, idle: false });
  });

  it('rule 3: without an idle timeout a split is never idle', () => {
    const { wm, clock } = setup(0);
    const a = wm.add('a');
    wm.add('b');
    wm.onRecord(a, 10);
    clock.advance(1e12);
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false });
  });

  it('rule 4: a finished split no longer holds the watermark back', () => {
    const { wm } = setup(0);
    const a = wm.add('a');
    const b = wm.add('b');
    wm.onRecord(a, 100);
    wm.onRecord(b, 10);
    expect(wm.current().watermark).toBe(9);
    wm.finish(b);
    expect(wm.current()).toEqual({ watermark: 99, idle: false });
    // A split that never had a record can finish too (an empty file).
    const { wm: wm2 } = setup(0);
    const c = wm2.add('c');
    const d = wm2.add('d');
    wm2.onRecord(c, 50);
    wm2.finish(d);
    expect(wm2.current()).toEqual({ watermark: 49, idle: false });
  });

  it('rule 5: the combined watermark never decreases when an idle split comes back behind', () => {
    const { wm, clock } = setup(0, 10);
    const a = wm.add('a');
    const b = wm.add('b');
    wm.onRecord(a, 100);
    wm.onRecord(b, 100);
    expect(wm.current().watermark).toBe(99);
    clock.advance(5);
    wm.onRecord(a, 500);
    clock.advance(5); // b idle (10 ms silent), a active
    expect(wm.current()).toEqual({ watermark: 499, idle: false });
    wm.onRecord(b, 200); // b active again, its own watermark 199 < 499
    expect(wm.current()).toEqual({ watermark: 499, idle: false });
    wm.onRecord(b, 300);
    wm.onRecord(a, 900);
    expect(wm.current()).toEqual({ watermark: 499, idle: false }); // min 299 < 499: stays
    wm.onRecord(b, 700);
    expect(wm.current()).toEqual({ watermark: 699, idle: false }); // min passed it: advances
  });

  it('rule 6: idle iff splits are unfinished but none is active; all finished is not idle', () => {
    const { wm, clock } = setup(0, 10);
    const a = wm.add('a');
    const b = wm.add('b');
    wm.onRecord(a, 100);
    wm.onRecord(b, 50);
    expect(wm.current()).toEqual({ watermark: 49, idle: false });
    wm.onRecord(b, 80); // never observed by current(): an idle subtask does not advance
    clock.advance(10);
    expect(wm.current()).toEqual({ watermark: 49, idle: true }); // all idle
    wm.finish(a);
    expect(wm.current()).toEqual({ watermark: 49, idle: true });
    wm.onRecord(b, 90);
    expect(wm.current()).toEqual({ watermark: 89, idle: false });
    wm.finish(b);
    // All finished: not idle, the last watermark holds until the reader ends (MAX follows).
    expect(wm.current()).toEqual({ watermark: 89, idle: false });
    // Before anything was declared the implicit split is active (rule 8), not idle.
    expect(setup().wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false });
  });

  it('rule 7: a timestamp that is not a finite number fails naming what the assigner returned', () => {
    const bad: [unknown, string][] = [
      [Number.NaN, 'returned NaN'],
      [Number.POSITIVE_INFINITY, 'returned Infinity'],
      [Number.NEGATIVE_INFINITY, 'returned -Infinity'],
      ['2024-01-01', 'returned "2024-01-01"'],
      [undefined, 'returned undefined'],
      [null, 'returned null'],
      [10n, 'returned 10n'],
      [new Date(0), 'returned a Date (1970-01-01T00:00:00.000Z)'],
      [{ ts: 1 }, 'returned an object'],
    ];
    for (const [ts, message] of bad) {
      const { wm } = setup();
      const a = wm.add('events.jsonl');
      const e = thrown(() => wm.onRecord(a, ts as number));
      expect(e).toBeInstanceOf(EddyError);
      expect((e as EddyError).code).toBe('EDDY_USER_FUNCTION');
      expect((e as EddyError).domain).toBe('user');
      expect((e as Error).message).toContain(`the timestamp assigner ${message}`);
      expect((e as Error).message).toContain("split 'events.jsonl'");
      expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false }); // unchanged
    }
    const { wm } = setup();
    expect(() => wm.onRecord(undefined, Number.NaN)).toThrow(/the timestamp assigner returned NaN/);
    // Finite timestamps of any sign and fractions are fine.
    wm.onRecord(undefined, -5.5);
    expect(wm.current().watermark).toBe(-5.5 - 11);
  });

  it('rule 8: without add() there is one implicit split, present from the start', () => {
    const { wm, clock } = setup(0, 100);
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: false });
    clock.advance(100); // silent since construction
    expect(wm.current()).toEqual({ watermark: MIN_WATERMARK, idle: true });
    wm.onRecord(undefined, 10);
    wm.onRecord(undefined, 30);
    wm.onRecord(undefined, 20);
    expect(wm.current()).toEqual({ watermark: 29, idle: false });
    clock.advance(100);
    expect(wm.current()).toEqual({ watermark: 29, idle: true });
  });

  it('rule 8: reader bugs are internal errors', () => {
    const cases: [(wm: SourceWatermarks) => void, RegExp][] = [
      [(wm) => wm.onRecord(0, 1), /unknown split handle \(0\)/], // no add()
      [(wm) => wm.finish(0), /finished an unknown split handle \(0\)/],
      [
        (wm) => {
          wm.onRecord(undefined, 1);
          wm.add('a');
        },
        /'a' was declared after records without a split handle/,
      ],
      [
        (wm) => {
          wm.add('a');
          wm.onRecord(undefined, 1);
        },
        /without a split handle after declaring splits/,
      ],
      [
        (wm) => {
          wm.add('a');
          wm.onRecord(1, 1);
        },
        /unknown split handle \(1\)/,
      ],
      [
        (wm) => {
          wm.add('a');
          wm.onRecord(-1, 1);
        },
        /unknown split handle \(-1\)/,
      ],
      [
        (wm) => {
          wm.add('a');
          wm.onRecord(0.5, 1);
        },
        /unknown split handle \(0.5\)/,
      ],
      [
        (wm) => {
          const a = wm.add('a');
          wm.finish(a);
          wm.onRecord(a, 1);
        },
        /record for split 'a' after finishing it/,
      ],
      [
        (wm) => {
          const a = wm.add('a');
          wm.finish(a);
          wm.finish(a);
        },
        /finished split 'a' twice/,
      ],
      [
        (wm) => {
          wm.add('a');
          wm.add('a');
        },
        /'a' was declared twice/,
      ],
    ];
    for (const [f, message] of cases) {
      const e = thrown(() => f(setup().wm));
      expect(e).toBeInstanceOf(InternalError);
      expect((e as Error).message).toMatch(message);
    }
  });

  it('reads the clock on the hot path only when an idle timeout is set', () => {
    const { wm, clock } = setup(0);
    const a = wm.add('a');
    const before = clock.reads;
    for (let i = 0; i < 100; i++) wm.onRecord(a, i);
    wm.current();
    expect(clock.reads).toBe(before);
    const idle = setup(0, 50);
    const b = idle.wm.add('b');
    const readsBefore = idle.clock.reads;
    idle.wm.onRecord(b, 1);
    expect(idle.clock.reads).toBe(readsBefore + 1);
  });

  it('rejects a hand-made strategy with bad timing', () => {
    const clock = new ManualClock();
    const bad: [WatermarkTiming, RegExp][] = [
      [{ kind: 'bounded', outOfOrdernessMs: -1, idleTimeoutMs: undefined }, /outOfOrdernessMs/],
      [{ kind: 'monotonous', outOfOrdernessMs: 5, idleTimeoutMs: undefined }, /monotonous/],
      [{ kind: 'bounded', outOfOrdernessMs: 0, idleTimeoutMs: 0 }, /idleTimeoutMs/],
      [{ kind: 'other' as 'bounded', outOfOrdernessMs: 0, idleTimeoutMs: undefined }, /kind/],
    ];
    for (const [timing, message] of bad) {
      expect(() => new SourceWatermarks(timing, clock)).toThrow(message);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests against a naive reference that recomputes everything from the history.

type Op =
  | { k: 'add' }
  | { k: 'record'; pick: number; ts: number }
  | { k: 'finish'; pick: number }
  | { k: 'advance'; ms: number }
  | { k: 'current' };

interface RefSplit {
  addedAt: number;
  records: { ts: number; at: number }[];
  finished: boolean;
}

/** The rules, written as directly as possible: no incremental state but `combined`. */
class Reference {
  splits: RefSplit[] = [];
  combined = MIN_WATERMARK;
  now = 0;
  constructor(
    readonly outOfOrdernessMs: number,
    readonly idleTimeoutMs: number | undefined,
  ) {}

  splitWatermark(s: RefSplit): number {
    if (s.records.length === 0) return MIN_WATERMARK;
    return Math.max(...s.records.map((r) => r.ts)) - this.outOfOrdernessMs - 1;
  }

  isIdle(s: RefSplit): boolean {
    if (this.idleTimeoutMs === undefined) return false;
    const last = s.records.length === 0 ? s.addedAt : s.records[s.records.length - 1]!.at;
    return this.now - last >= this.idleTimeoutMs;
  }

  current(): { watermark: number; idle: boolean } {
    const unfinished = this.splits.filter((s) => !s.finished);
    const active = unfinished.filter((s) => !this.isIdle(s));
    if (active.length > 0) {
      const min = Math.min(...active.map((s) => this.splitWatermark(s)));
      this.combined = Math.max(this.combined, min);
    }
    return { watermark: this.combined, idle: unfinished.length > 0 && active.length === 0 };
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Op>({ k: 'add' }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('record' as const),
      pick: fc.nat(),
      ts: fc.integer({ min: -100, max: 1000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('finish' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 60 }),
    }),
  },
  { weight: 3, arbitrary: fc.constant<Op>({ k: 'current' }) },
);

const timingArb = fc.record({
  kind: fc.constantFrom('bounded' as const, 'monotonous' as const),
  outOfOrdernessMs: fc.integer({ min: 0, max: 50 }),
  idleTimeoutMs: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
});

const build = (t: WatermarkTiming) => {
  const b: WatermarkStrategyBuilder<number> =
    t.kind === 'bounded'
      ? WatermarkStrategy.forBoundedOutOfOrderness<number>(t.outOfOrdernessMs)
      : WatermarkStrategy.forMonotonousTimestamps<number>();
  const s = b.withTimestampAssigner((n) => n);
  return t.idleTimeoutMs === undefined ? s : s.withIdleness(t.idleTimeoutMs);
};

/**
 * Runs `ops` on a SourceWatermarks and the reference, comparing every current(); with
 * `implicit`, adds are skipped and records go to the implicit split. Returns the observed
 * current() values.
 */
const run = (timing: WatermarkTiming, ops: readonly Op[], implicit: boolean) => {
  const strategy = build(timing);
  const clock = new ManualClock();
  const wm = new SourceWatermarks(strategy, clock);
  const ref = new Reference(strategy.outOfOrdernessMs, strategy.idleTimeoutMs);
  const handles: number[] = [];
  const observed: { watermark: number; idle: boolean; maxTs: number }[] = [];
  let maxTs = MIN_WATERMARK;
  // Until the first add() there is the implicit split (rule 8); add() replaces it.
  ref.splits.push({ addedAt: 0, records: [], finished: false });
  const unfinished = () => handles.filter((_, i) => !ref.splits[i]!.finished);
  for (const op of ops) {
    switch (op.k) {
      case 'add': {
        if (implicit) break;
        if (handles.length === 0) ref.splits = [];
        handles.push(wm.add(`s${handles.length}`));
        ref.splits.push({ addedAt: clock.t, records: [], finished: false });
        break;
      }
      case 'record': {
        if (implicit) {
          wm.onRecord(undefined, op.ts);
          ref.splits[0]!.records.push({ ts: op.ts, at: clock.t });
        } else {
          const open = unfinished();
          if (open.length === 0) break;
          const h = open[op.pick % open.length]!;
          wm.onRecord(h, op.ts);
          ref.splits[h]!.records.push({ ts: op.ts, at: clock.t });
        }
        maxTs = Math.max(maxTs, op.ts);
        break;
      }
      case 'finish': {
        if (implicit) break;
        const open = unfinished();
        if (open.length === 0) break;
        const h = open[op.pick % open.length]!;
        wm.finish(h);
        ref.splits[h]!.finished = true;
        break;
      }
      case 'advance':
        clock.advance(op.ms);
        ref.now = clock.t;
        break;
      case 'current': {
        const got = wm.current();
        expect(got).toEqual(ref.current());
        observed.push({ ...got, maxTs });
        break;
      }
    }
  }
  return observed;
};

describe('SourceWatermarks properties', () => {
  it('agrees with a naive reference over random add/record/finish/clock sequences', () => {
    fc.assert(
      fc.property(
        timingArb,
        fc.array(opArb, { maxLength: 80 }),
        fc.boolean(),
        (t, ops, implicit) => {
          run(t, [{ k: 'add' }, ...ops, { k: 'current' }], implicit);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('the combined watermark never decreases and never passes the data (max ts - outOfOrderness - 1)', () => {
    fc.assert(
      fc.property(
        timingArb,
        fc.array(opArb, { maxLength: 80 }),
        fc.boolean(),
        (t, ops, implicit) => {
          const observed = run(t, ops, implicit);
          const delay = (t.kind === 'monotonous' ? 0 : t.outOfOrdernessMs) + 1;
          let last = MIN_WATERMARK;
          for (const o of observed) {
            expect(o.watermark).toBeGreaterThanOrEqual(last);
            expect(o.watermark).toBeLessThanOrEqual(o.maxTs - delay);
            last = o.watermark;
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('with no idleness and no finished splits, the watermark is the minimum over split maxima', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1 }), {
          minLength: 1,
          maxLength: 6,
        }),
        (ooo, perSplit) => {
          const wm = new SourceWatermarks(
            build({ kind: 'bounded', outOfOrdernessMs: ooo, idleTimeoutMs: undefined }),
            new ManualClock(),
          );
          const handles = perSplit.map((_, i) => wm.add(`s${i}`));
          // Interleave the splits' records round robin.
          const longest = Math.max(...perSplit.map((r) => r.length));
          for (let k = 0; k < longest; k++) {
            perSplit.forEach((records, i) => {
              if (k < records.length) wm.onRecord(handles[i], records[k]!);
            });
          }
          const expected = Math.min(...perSplit.map((r) => Math.max(...r))) - ooo - 1;
          expect(wm.current()).toEqual({ watermark: expected, idle: false });
        },
      ),
    );
  });
});
