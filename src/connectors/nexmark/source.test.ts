import { describe, expect, it } from 'vitest';
import { createTestContext, pollAll } from '../testing.js';
import { nexmarkConfig, nexmarkEvent } from './generator.js';
import type { NexmarkEvent } from './model.js';
import { NEXMARK_OUT_OF_ORDERNESS_MS, NexmarkSource } from './source.js';

describe('NexmarkSource', () => {
  it('generates events 0..N-1 as contiguous ranges per subtask, the same at any parallelism', async () => {
    const config = { eventsPerSecond: 1000 };
    const source = NexmarkSource.of({ events: 500, config });
    expect(source.defaultName).toBe('nexmark-source');
    const expected = Array.from({ length: 500 }, (_, i) => nexmarkEvent(i, nexmarkConfig(config)));
    for (const p of [1, 3]) {
      const all: NexmarkEvent[] = [];
      for (let i = 0; i < p; i++) {
        const reader = source.createReader(createTestContext({ subtaskIndex: i, parallelism: p }));
        await reader.open();
        const out = await pollAll(reader, 64);
        // Within a subtask, event time never goes down.
        expect(out.every((e, k) => k === 0 || e.dateTime >= out[k - 1]!.dateTime)).toBe(true);
        all.push(...out);
      }
      expect(all).toEqual(expected);
    }
  });

  it('gives event time from dateTime with a 4 s bound', () => {
    const w = NexmarkSource.watermarks();
    expect(w.outOfOrdernessMs).toBe(NEXMARK_OUT_OF_ORDERNESS_MS);
    expect(NEXMARK_OUT_OF_ORDERNESS_MS).toBe(4000);
    expect(w.timestampOf(nexmarkEvent(123))).toBe(nexmarkEvent(123).dateTime);
  });

  it('rejects bad options', () => {
    expect(() => NexmarkSource.of({ events: -1 })).toThrow(/events/);
    expect(() => NexmarkSource.of({ events: 1.5 })).toThrow(/events/);
    expect(() => NexmarkSource.of({ config: { eventsPerSecond: 0 } })).toThrow(/eventsPerSecond/);
    expect(() => NexmarkSource.of({ ratePerSecond: -5 })).toThrow();
  });
});
