import { describe, expect, it, expect as vitestExpect } from 'vitest';
import {
  DEFAULT_NEXMARK_CONFIG,
  eventKind,
  lastBase0AuctionId,
  lastBase0PersonId,
  nexmarkConfig,
  nexmarkEvent,
} from './generator.js';
import type { Auction, Bid, NexmarkEvent, Person } from './model.js';

const N = 50_000;
const events: NexmarkEvent[] = Array.from({ length: N }, (_, i) => nexmarkEvent(i));
const persons = events.filter((e): e is Person => e.type === 'person');
const auctions = events.filter((e): e is Auction => e.type === 'auction');
const bids = events.filter((e): e is Bid => e.type === 'bid');
const bytes = (es: NexmarkEvent[]) =>
  es.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0) / es.length;

describe('nexmarkEvent', () => {
  it('is a pure function of the event id (any order, any split of the id range)', () => {
    const again = [37, 4, 49_999, 0, 1, 12_345].map((i) => nexmarkEvent(i));
    expect(again).toEqual([37, 4, 49_999, 0, 1, 12_345].map((i) => events[i]));
    // Three contiguous ranges generated in reverse order, interleaved with other ids.
    const split: NexmarkEvent[] = [];
    for (const [from, to] of [
      [30_000, N],
      [10_000, 30_000],
      [0, 10_000],
    ] as const) {
      const part: NexmarkEvent[] = [];
      for (let i = from; i < to; i++) {
        nexmarkEvent(N + i); // other ids in between must not disturb the next one
        part.push(nexmarkEvent(i));
      }
      split.unshift(...part);
    }
    expect(split).toEqual(events);
  });

  it('has 1 person, 3 auctions and 46 bids per 50 events, by eventId % 50', () => {
    expect(persons.length).toBe(N / 50);
    expect(auctions.length).toBe((3 * N) / 50);
    expect(bids.length).toBe((46 * N) / 50);
    const wrong = events.filter((e, i) => {
      const r = i % 50;
      return e.type !== eventKind(i) || e.type !== (r === 0 ? 'person' : r < 4 ? 'auction' : 'bid');
    });
    expect(wrong).toEqual([]);
  });

  it('numbers persons and auctions consecutively from 1000', () => {
    expect(persons.map((p) => p.id)).toEqual(persons.map((_, i) => 1000 + i));
    expect(auctions.map((a) => a.id)).toEqual(auctions.map((_, i) => 1000 + i));
    expect(lastBase0PersonId(49)).toBe(0);
    expect(lastBase0PersonId(50)).toBe(1);
    expect(lastBase0AuctionId(3)).toBe(2);
    expect(lastBase0AuctionId(50)).toBe(2);
    expect(lastBase0AuctionId(51)).toBe(3);
  });

  it('refers only to persons and auctions that already exist, recent or hot', () => {
    const bad: unknown[] = [];
    const expect = (v: number) => ({
      toBeLessThanOrEqual: (b: number) => v <= b || bad.push([v, '<=', b]),
      toBeGreaterThanOrEqual: (b: number) => v >= b || bad.push([v, '>=', b]),
      toBeGreaterThan: (b: number) => v > b || bad.push([v, '>', b]),
    });
    events.forEach((e, i) => {
      const lastPerson = lastBase0PersonId(i) + 1000;
      if (e.type === 'bid') {
        const lastAuction = lastBase0AuctionId(i) + 1000;
        expect(e.auction).toBeLessThanOrEqual(lastAuction);
        expect(e.auction).toBeGreaterThanOrEqual(Math.min(lastAuction - 99, e.auction));
        const hot = Math.floor((lastAuction - 1000) / 100) * 100 + 1000;
        if (e.auction !== hot) expect(e.auction).toBeGreaterThan(lastAuction - 100);
        expect(e.bidder).toBeGreaterThanOrEqual(1000);
        expect(e.bidder).toBeLessThanOrEqual(lastPerson + 1);
      }
      if (e.type === 'auction') {
        expect(e.seller).toBeGreaterThanOrEqual(1000);
        expect(e.seller).toBeLessThanOrEqual(lastPerson);
        expect(e.category).toBeGreaterThanOrEqual(10);
        expect(e.category).toBeLessThanOrEqual(14);
        expect(e.expires).toBeGreaterThan(e.dateTime);
        // h = 166 ms at 10,000 events/s: 1 + uniform[0, 332).
        expect(e.expires - e.dateTime).toBeLessThanOrEqual(333);
        expect(e.reserve).toBeGreaterThan(e.initialBid);
      }
    });
    vitestExpect(bad.slice(0, 5)).toEqual([]);
    vitestExpect(new Set(auctions.map((a) => a.category)).size).toBe(5);
  });

  it('draws prices log-uniformly from 100 to 100,000,000 cents', () => {
    const prices = bids.map((b) => b.price);
    expect(prices.filter((p) => !Number.isInteger(p) || p < 100 || p > 100_000_000)).toEqual([]);
    expect(Math.min(...prices)).toBeLessThan(110);
    expect(Math.max(...prices)).toBeGreaterThan(90_000_000);
    // log10(price / 100) is uniform on [0, 6): each decade holds about 1/6.
    const decades = new Array(6).fill(0);
    for (const p of prices) decades[Math.min(5, Math.floor(Math.log10(p / 100)))]++;
    for (const d of decades) expect(d / prices.length).toBeCloseTo(1 / 6, 1);
  });

  it('has the hot auctions, bidders, sellers and channels in their shares', () => {
    let hotAuction = 0;
    let hotBidder = 0;
    let hotChannel = 0;
    events.forEach((e, i) => {
      if (e.type !== 'bid') return;
      const lastAuction = lastBase0AuctionId(i);
      if (e.auction === Math.floor(lastAuction / 100) * 100 + 1000) hotAuction++;
      if (e.bidder === Math.floor(lastBase0PersonId(i) / 100) * 100 + 1001) hotBidder++;
      if (!e.channel.startsWith('channel-')) hotChannel++;
    });
    const hotSeller = auctions.filter(
      (a) => a.seller === Math.floor((a.id - 1000) / 3 / 100) * 100 + 1000,
    ).length;
    // 50% hot plus the random picks that happen to hit the hot one (1 in up to 100).
    expect(hotAuction / bids.length).toBeGreaterThan(0.49);
    expect(hotAuction / bids.length).toBeLessThan(0.53);
    expect(hotBidder / bids.length).toBeGreaterThan(0.74);
    expect(hotBidder / bids.length).toBeLessThan(0.77);
    expect(hotSeller / auctions.length).toBeGreaterThan(0.73);
    expect(hotSeller / auctions.length).toBeLessThan(0.78);
    expect(hotChannel / bids.length).toBeCloseTo(0.5, 1);
  });

  it('stamps events at baseTime + floor(eventId * 1000 / eventsPerSecond)', () => {
    expect(events[0]!.dateTime).toBe(Date.UTC(2026, 0, 1));
    expect(events[9]!.dateTime).toBe(Date.UTC(2026, 0, 1));
    expect(events[10]!.dateTime).toBe(Date.UTC(2026, 0, 1) + 1);
    expect(events[49_999]!.dateTime).toBe(Date.UTC(2026, 0, 1) + 4999);
    const config = nexmarkConfig({ baseTime: 0, eventsPerSecond: 3 });
    expect(nexmarkEvent(7, config).dateTime).toBe(2333);
    expect(() => nexmarkConfig({ eventsPerSecond: 0 })).toThrow(/eventsPerSecond/);
    expect(DEFAULT_NEXMARK_CONFIG.eventsPerSecond).toBe(10_000);
  });

  it("pads records to about Beam's sizes", () => {
    // Beam counts 8 bytes per number and the strings' lengths; of a bid, not channel and url.
    const beam = (e: NexmarkEvent): number =>
      e.type === 'bid'
        ? 32 + e.extra.length
        : Object.values(e).reduce<number>(
            (n, v) => n + (typeof v === 'number' ? 8 : v.length),
            -e.type.length,
          );
    const avg = (es: NexmarkEvent[]) => es.reduce((n, e) => n + beam(e), 0) / es.length;
    expect(avg(persons)).toBeGreaterThan(190);
    expect(avg(persons)).toBeLessThan(215);
    expect(avg(auctions)).toBeGreaterThan(480);
    expect(avg(auctions)).toBeLessThan(520);
    expect(avg(bids)).toBeGreaterThan(95);
    expect(avg(bids)).toBeLessThan(105);
    // And as JSON lines.
    expect(bytes(bids)).toBeLessThan(300);
  });
});
