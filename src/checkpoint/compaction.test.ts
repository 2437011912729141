import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CompactionInput,
  compactionFactor,
  estimatedLiveBytes,
  MAX_CHAIN_BLOCKS,
  MAX_READ_FACTOR,
  MIN_READ_FACTOR,
  shouldCompact,
} from './compaction.js';

/** Key group 0 has the lowest threshold, 1.5x. */
const input = (over: Partial<CompactionInput>): CompactionInput => ({
  keyGroup: 0,
  chain: [{ length: 1000, records: 100 }],
  changed: 1,
  liveEntries: 100,
  ...over,
});

describe('shouldCompact', () => {
  it('appends a small delta to a short chain', () => {
    expect(shouldCompact(input({}))).toBe(false);
  });

  it('never compacts a key group without a chain (its changes become the base)', () => {
    expect(shouldCompact(input({ chain: [], changed: 1e9, liveEntries: 1 }))).toBe(false);
  });

  it('compacts once the chain with the delta passes the threshold x the live state', () => {
    // 10 bytes per record, live 1000 bytes, threshold 1.5x = 1500 bytes
    const chain = [
      { length: 1000, records: 100 },
      { length: 400, records: 40 },
    ];
    expect(shouldCompact(input({ chain, changed: 10 }))).toBe(false); // 1500
    expect(shouldCompact(input({ chain, changed: 11 }))).toBe(true); // 1510
  });

  it('compacts at once when (nearly) every key changed', () => {
    expect(shouldCompact(input({ changed: 100 }))).toBe(true);
  });

  it('compacts sooner when deletions shrank the live state below the base', () => {
    const chain = [
      { length: 1000, records: 100 },
      { length: 50, records: 5 },
    ];
    expect(shouldCompact(input({ chain, liveEntries: 50 }))).toBe(true);
    expect(shouldCompact(input({ chain, liveEntries: 100 }))).toBe(false);
  });

  it('takes a base with unknown records to hold the live entries', () => {
    const c = input({ chain: [{ length: 1000, records: 0 }], liveEntries: 50 });
    expect(estimatedLiveBytes(c)).toBe(1000);
  });

  it('caps the chain length', () => {
    const block = (i: number) => ({ length: i === 0 ? 1e6 : 1, records: i === 0 ? 1e5 : 1 });
    const chain = Array.from({ length: MAX_CHAIN_BLOCKS }, (_, i) => block(i));
    expect(shouldCompact(input({ chain: chain.slice(0, -1), liveEntries: 1e5 }))).toBe(false);
    expect(shouldCompact(input({ chain, liveEntries: 1e5 }))).toBe(true);
  });

  it('spreads the thresholds of neighbouring key groups over [1.5, 2)', () => {
    const factors = Array.from({ length: 128 }, (_, kg) => compactionFactor(kg));
    for (const f of factors) {
      expect(f).toBeGreaterThanOrEqual(MIN_READ_FACTOR);
      expect(f).toBeLessThan(MAX_READ_FACTOR);
    }
    // Any 8 consecutive key groups cover most of the range: they do not compact together.
    for (let kg = 0; kg + 8 <= 128; kg++) {
      const w = factors.slice(kg, kg + 8);
      expect(Math.max(...w) - Math.min(...w)).toBeGreaterThan(0.35);
    }
  });

  it('keeps every appended chain within the read bound and the length cap (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 32767 }),
        fc.array(fc.record({ length: fc.integer({ min: 1, max: 10_000 }), records: fc.nat(500) }), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.nat(2000),
        fc.integer({ min: 1, max: 2000 }),
        (keyGroup, chain, changed, liveEntries) => {
          const c = { keyGroup, chain, changed, liveEntries };
          if (shouldCompact(c)) return;
          const perRecord = estimatedLiveBytes(c) / liveEntries;
          const total = chain.reduce((a, b) => a + b.length, changed * perRecord);
          expect(total).toBeLessThanOrEqual(MAX_READ_FACTOR * estimatedLiveBytes(c) + 1e-6);
          expect(chain.length + 1).toBeLessThanOrEqual(MAX_CHAIN_BLOCKS);
        },
      ),
    );
  });
});
