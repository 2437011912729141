import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SourceReader } from '../runtime/io.js';
import {
  GENERATOR_STATE,
  GeneratorSource,
  type GeneratorSplitState,
  hashToUint32,
  hashToUnit,
  initialGeneratorSplits,
} from './generator-source.js';
import {
  createTestContext,
  dealContiguous,
  FakeClock,
  pollAll,
  pollBatches,
  type TestConnectorContext,
} from './testing.js';

const identity = GeneratorSource.of({ count: 0, generate: (i) => i });

const openReader = async (
  source: typeof identity,
  ctx: TestConnectorContext,
): Promise<SourceReader<number>> => {
  const reader = source.createReader(ctx);
  await reader.open();
  return reader;
};

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('GeneratorSource', () => {
  it('for p in 1..6 the subtasks together generate exactly [0, count)', async () => {
    for (const count of [0, 1, 5, 17, 100]) {
      const source = GeneratorSource.of({ count, generate: (i) => i });
      for (let p = 1; p <= 6; p++) {
        const all: number[] = [];
        for (let i = 0; i < p; i++) {
          const reader = await openReader(
            source,
            createTestContext({ subtaskIndex: i, parallelism: p }),
          );
          const out = await pollAll(reader, 7);
          const [split] = initialGeneratorSplits(count, i, p);
          expect(out).toEqual(range(split!.end! - split!.next).map((k) => k + split!.next));
          all.push(...out);
        }
        expect(all).toEqual(range(count));
      }
    }
  });

  it('snapshot + restore at another parallelism continues without duplicates or gaps', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 6, maxLength: 6 }),
        fc.integer({ min: 1, max: 9 }),
        async (count, pOld, pNew, polls, batch) => {
          const source = GeneratorSource.of({ count, generate: (i) => i });
          const emitted: number[] = [];
          const elements: GeneratorSplitState[] = [];
          for (let i = 0; i < pOld; i++) {
            const ctx = createTestContext({ subtaskIndex: i, parallelism: pOld });
            const reader = await openReader(source, ctx);
            emitted.push(...(await pollAll(reader, batch, polls[i]!)));
            reader.snapshotState(1);
            elements.push(...ctx.operatorState.elements<GeneratorSplitState>(GENERATOR_STATE));
          }
          const dealt = dealContiguous(elements, pNew);
          for (let i = 0; i < pNew; i++) {
            const ctx = createTestContext({
              subtaskIndex: i,
              parallelism: pNew,
              restoredState: { [GENERATOR_STATE]: dealt[i]! },
            });
            emitted.push(...(await pollAll(await openReader(source, ctx), batch)));
          }
          expect(emitted.sort((a, b) => a - b)).toEqual(range(count));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('unbounded: strided indexes per subtask, rescaled without duplicates or gaps', async () => {
    const source = GeneratorSource.of({ generate: (i) => i });
    const emitted: number[] = [];
    const elements: GeneratorSplitState[] = [];
    for (let i = 0; i < 3; i++) {
      const ctx = createTestContext({ subtaskIndex: i, parallelism: 3 });
      const reader = await openReader(source, ctx);
      const out = await pollAll(reader, 4, i + 1); // 4, 8 and 12 records
      expect(out).toEqual(range(out.length).map((k) => i + 3 * k));
      emitted.push(...out);
      reader.snapshotState(1);
      elements.push(...ctx.operatorState.elements<GeneratorSplitState>(GENERATOR_STATE));
    }
    const dealt = dealContiguous(elements, 2);
    for (let i = 0; i < 2; i++) {
      const ctx = createTestContext({
        subtaskIndex: i,
        parallelism: 2,
        restoredState: { [GENERATOR_STATE]: dealt[i]! },
      });
      const reader = await openReader(source, ctx);
      emitted.push(...(await pollAll(reader, 10, 6)));
    }
    // Every index below the smallest next position was emitted exactly once.
    const sorted = emitted.sort((a, b) => a - b);
    expect(new Set(sorted).size).toBe(sorted.length);
    const prefix = sorted.findIndex((v, k) => v !== k);
    expect(prefix === -1 ? sorted.length : prefix).toBeGreaterThanOrEqual(30);
  });

  it('ends with "end" once the stop signal fires (unbounded)', async () => {
    const ctx = createTestContext();
    const reader = await openReader(GeneratorSource.of({ generate: (i) => i }), ctx);
    expect(await reader.poll(() => {}, 5)).toBe('more');
    ctx.stop();
    const out: number[] = [];
    expect(await reader.poll((r) => out.push(r), 5)).toBe('end');
    expect(out).toEqual([]);
  });

  it('unbounded without a rate: every poll emits a full batch and settles without a timer', async () => {
    const source = GeneratorSource.of({ generate: (i) => i });
    expect(source.createEnumerator).toBeUndefined(); // splits are a function of (i, p)
    const reader = await openReader(source, createTestContext());
    for (let k = 0; k < 100; k++) {
      const out: number[] = [];
      let result: string | undefined;
      void reader
        .poll((r) => out.push(r), 50)
        .then((r) => {
          result = r;
        });
      // Only microtasks run before a setImmediate callback: a poll that waited on a timer or
      // on I/O would still be pending here.
      await new Promise((resolve) => setImmediate(resolve));
      expect(result).toBe('more');
      expect(out).toEqual(range(50).map((j) => 50 * k + j));
    }
    await reader.close();
  });

  it('limits the total rate across subtasks (fake clock)', async () => {
    const clock = new FakeClock();
    const source = GeneratorSource.of({
      count: 1000,
      generate: (i) => i,
      ratePerSecond: 400,
      clock,
    });
    const ctx = createTestContext({ subtaskIndex: 1, parallelism: 4 });
    const out = await pollAll(await openReader(source, ctx), 25);
    expect(out).toHaveLength(250);
    // 100/s per subtask, burst of 10: the other 240 records take 2.4 virtual seconds.
    expect(clock.now()).toBeGreaterThanOrEqual(2400);
    expect(clock.now()).toBeLessThanOrEqual(2500);
  });

  it('divides the total rate over the ranges: 3 ranges restored at p=8 (fake clock)', async () => {
    const source = (clock: FakeClock) =>
      GeneratorSource.of({ count: 1800, generate: (i) => i, ratePerSecond: 300, clock });
    // Snapshot the 3 fresh ranges at p=3, deal them to 8 subtasks.
    const elements: GeneratorSplitState[] = [];
    for (let i = 0; i < 3; i++) {
      const ctx = createTestContext({ subtaskIndex: i, parallelism: 3 });
      const reader = await openReader(source(new FakeClock()), ctx);
      reader.snapshotState(1);
      elements.push(...ctx.operatorState.elements<GeneratorSplitState>(GENERATOR_STATE));
    }
    expect(elements.map((e) => e.of)).toEqual([3, 3, 3]);
    const dealt = dealContiguous(elements, 8);
    let rateSum = 0;
    let emitted = 0;
    for (let i = 0; i < 8; i++) {
      const clock = new FakeClock();
      const ctx = createTestContext({
        subtaskIndex: i,
        parallelism: 8,
        restoredState: { [GENERATOR_STATE]: dealt[i]! },
      });
      const out = await pollAll(await openReader(source(clock), ctx), 25);
      emitted += out.length;
      if (out.length === 0) continue;
      // Each range at 100/s (burst of 2), not 300/8.
      const rate = (out.length - 2) / (clock.now() / 1000);
      expect(rate).toBeGreaterThan(98);
      expect(rate).toBeLessThan(102);
      rateSum += rate;
    }
    expect(emitted).toBe(1800);
    expect(rateSum).toBeGreaterThan(294);
    expect(rateSum).toBeLessThan(306);
  });

  it('validates options and restored state', async () => {
    expect(() => GeneratorSource.of({ count: -1, generate: (i) => i })).toThrow(/count/);
    expect(() => GeneratorSource.of({ count: 1.5, generate: (i) => i })).toThrow(/count/);
    const ctx = createTestContext({ restoredState: { [GENERATOR_STATE]: [{ next: 'x' }] } });
    await expect(openReader(identity, ctx)).rejects.toThrow(/not a position/);
  });
});

describe('hashToUnit', () => {
  it('is deterministic, in [0, 1), and sensitive to index and seed', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.nat(), (i, seed) => {
        const u = hashToUnit(i, seed);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThan(1);
        expect(hashToUnit(i, seed)).toBe(u);
      }),
    );
    expect(hashToUint32(1)).not.toBe(hashToUint32(2));
    expect(hashToUint32(1, 1)).not.toBe(hashToUint32(1, 2));
    expect(hashToUint32(2 ** 32)).not.toBe(hashToUint32(0));
  });

  it('spreads consecutive indexes evenly over 10 buckets', () => {
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) buckets[Math.floor(hashToUnit(i) * 10)]!++;
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(500);
  });

  it('with event time, each restored progression is its own split, read in turns', async () => {
    // Two unbounded progressions restored onto one subtask, one 10,000 records ahead: each
    // gets its own split handle (so its own watermark), and both advance batch by batch.
    const source = GeneratorSource.of({ generate: (i) => i });
    const restoredState = {
      [GENERATOR_STATE]: [
        { next: 0, end: null, step: 2, of: 2 },
        { next: 20_001, end: null, step: 2, of: 2 },
      ],
    };
    const ctx = createTestContext({ restoredState });
    const reader = await openReader(source as never, ctx);
    const [batch] = await pollBatches(reader, 6, 1);
    expect(ctx.splits.ids.length).toBe(2);
    expect(batch!.records).toEqual([0, 20_001, 2, 20_003, 4, 20_005]);
    const [a, b] = [batch!.splits[0], batch!.splits[1]];
    expect(a).not.toBe(b);
    expect(batch!.splits).toEqual([a, b, a, b, a, b]);
    // Bounded ranges take turns too, and each is finished when exhausted.
    const bounded = createTestContext({
      restoredState: {
        [GENERATOR_STATE]: [
          { next: 0, end: 2, step: 1, of: 2 },
          { next: 10, end: 13, step: 1, of: 2 },
        ],
      },
    });
    const r2 = await openReader(GeneratorSource.of({ count: 13, generate: (i) => i }), bounded);
    expect(await pollAll(r2, 10)).toEqual([0, 10, 1, 11, 12]);
    expect(bounded.splits.finished.length).toBe(2);
  });
});
