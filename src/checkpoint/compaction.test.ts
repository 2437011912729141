import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CompactionInput,
  estimatedLiveBytes,
  MAX_CHAIN_BLOCKS,
  MAX_READ_FACTOR,
  shouldCompact,
} from './compaction.js';

const input = (over: Partial<CompactionInput>): CompactionInput => ({
  chainBytes: [1000],
  baseRecords: 100,
  deltaBytes: 10,
  liveEntries: 100,
  ...over,
});

describe('shouldCompact', () => {
  it('appends a small delta to a short chain', () => {
    expect(shouldCompact(input({}))).toBe(false);
  });

  it('never compacts a key group without a chain (its delta becomes the base)', () => {
    expect(shouldCompact(input({ chainBytes: [], deltaBytes: 1e9, liveEntries: 1 }))).toBe(false);
  });

  it('compacts once the chain with the delta passes twice the live state', () => {
    // live ~1000 bytes: 1000 + 990 + 10 = 2000 is still within 2x, one byte more is not
    expect(shouldCompact(input({ chainBytes: [1000, 990], deltaBytes: 10 }))).toBe(false);
    expect(shouldCompact(input({ chainBytes: [1000, 990], deltaBytes: 11 }))).toBe(true);
  });

  it('compacts sooner when deletions shrank the live state below the base', () => {
    expect(shouldCompact(input({ chainBytes: [1000, 50], liveEntries: 50 }))).toBe(true);
    expect(shouldCompact(input({ chainBytes: [1000, 50], liveEntries: 100 }))).toBe(false);
  });

  it('takes the base as the live size when its records are unknown (a full checkpoint)', () => {
    expect(estimatedLiveBytes(input({ baseRecords: 0, liveEntries: 5 }))).toBe(1000);
  });

  it('caps the chain length', () => {
    const full = Array.from({ length: MAX_CHAIN_BLOCKS }, (_, i) => (i === 0 ? 1e6 : 1));
    expect(shouldCompact(input({ chainBytes: full.slice(0, -1), baseRecords: 100 }))).toBe(false);
    expect(shouldCompact(input({ chainBytes: full, baseRecords: 100 }))).toBe(true);
  });

  it('keeps every appended chain within the read bound and the length cap (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 2000 }),
        (chainBytes, baseRecords, deltaBytes, liveEntries) => {
          const c = { chainBytes, baseRecords, deltaBytes, liveEntries };
          if (shouldCompact(c)) return;
          const total = chainBytes.reduce((a, b) => a + b, deltaBytes);
          expect(total).toBeLessThanOrEqual(MAX_READ_FACTOR * estimatedLiveBytes(c) + 1e-6);
          expect(chainBytes.length + 1).toBeLessThanOrEqual(MAX_CHAIN_BLOCKS);
        },
      ),
    );
  });
});
