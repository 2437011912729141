/**
 * The Nexmark queries computed straightforwardly over the generated JSON Lines, with plain
 * loops and Maps following the SQL semantics (docs/NEXMARK-QUERIES.md), independent of the engine:
 * the reference the e2e tests compare eddy's output with. Every function returns the expected
 * output lines in canonical form ({@link canonical}), sorted.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Ev {
  type: 'person' | 'auction' | 'bid';
  [field: string]: unknown;
}
export interface BidRow {
  type: 'bid';
  auction: number;
  bidder: number;
  price: number;
  dateTime: number;
  extra: string;
}

/** A record with its keys sorted, as a string: field order does not matter. */
export const canonical = (o: Record<string, unknown>): string =>
  JSON.stringify(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  );

/** Output lines (JSON) in canonical form, sorted: a multiset to compare. */
export const canonicalLines = (lines: readonly string[]): string[] =>
  lines.map((l) => canonical(JSON.parse(l))).sort();

const done = (rows: Record<string, unknown>[]): string[] => rows.map(canonical).sort();

/** All events of the `nexmark-*.jsonl` files in `dir`, in file order. */
export const readEvents = (dir: string): Ev[] =>
  readdirSync(dir)
    .filter((f) => f.startsWith('nexmark-') && f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Ev),
    );

export const bidsOf = (events: Ev[]): BidRow[] =>
  events.filter((e) => e.type === 'bid') as unknown as BidRow[];

export const q0 = (bids: BidRow[]) =>
  done(
    bids.map((b) => ({
      auction: b.auction,
      bidder: b.bidder,
      price: b.price,
      dateTime: b.dateTime,
      extra: b.extra,
    })),
  );

/** 0.908 * price, rounded half up to a whole cent: BigInt arithmetic, independent of q1.ts. */
const euro = (cents: number) => Number((BigInt(cents) * 908n + 500n) / 1000n);

export const q1 = (bids: BidRow[]) =>
  done(
    bids.map((b) => ({
      auction: b.auction,
      bidder: b.bidder,
      price: euro(b.price),
      dateTime: b.dateTime,
      extra: b.extra,
    })),
  );

export const q2 = (bids: BidRow[]) =>
  done(
    bids.filter((b) => b.auction % 123 === 0).map((b) => ({ auction: b.auction, price: b.price })),
  );

/** HOP(size 10 s, slide 2 s): count per (window, auction), keep the window's maximum. */
export const q5 = (bids: BidRow[]) => {
  const counts = new Map<number, Map<number, number>>();
  for (const b of bids) {
    const last = b.dateTime - (b.dateTime % 2000);
    for (let start = last; start > b.dateTime - 10_000; start -= 2000) {
      let w = counts.get(start);
      if (!w) {
        w = new Map();
        counts.set(start, w);
      }
      w.set(b.auction, (w.get(b.auction) ?? 0) + 1);
    }
  }
  const rows: Record<string, unknown>[] = [];
  for (const [starttime, w] of counts) {
    const max = Math.max(...w.values());
    for (const [auction, num] of w) if (num === max) rows.push({ auction, num, starttime });
  }
  return done(rows);
};

/** TUMBLE(10 s): the bids of each window with the window's highest price. */
export const q7 = (bids: BidRow[]) => {
  const max = new Map<number, number>();
  const start = (b: BidRow) => b.dateTime - (b.dateTime % 10_000);
  for (const b of bids) max.set(start(b), Math.max(max.get(start(b)) ?? -1, b.price));
  return done(
    bids
      .filter((b) => b.price === max.get(start(b)))
      .map((b) => ({
        auction: b.auction,
        price: b.price,
        bidder: b.bidder,
        dateTime: b.dateTime,
        extra: b.extra,
      })),
  );
};

/** SESSION(gap 10 s) per bidder: windows [t, t + gap) that overlap or touch merge. */
export const q11 = (bids: BidRow[]) => {
  const times = new Map<number, number[]>();
  for (const b of bids) {
    let t = times.get(b.bidder);
    if (!t) {
      t = [];
      times.set(b.bidder, t);
    }
    t.push(b.dateTime);
  }
  const rows: Record<string, unknown>[] = [];
  for (const [bidder, ts] of times) {
    ts.sort((a, b) => a - b);
    let first = ts[0]!;
    let end = first + 10_000;
    let n = 0;
    for (const t of ts) {
      if (t > end) {
        rows.push({ bidder, bid_count: n, starttime: first, endtime: end });
        first = t;
        n = 0;
      }
      end = Math.max(end, t + 10_000);
      n++;
    }
    rows.push({ bidder, bid_count: n, starttime: first, endtime: end });
  }
  return done(rows);
};

/** Bids per bidder: what q12's counts of each bidder must add up to. */
export const bidsPerBidder = (bids: BidRow[]): Map<number, number> => {
  const n = new Map<number, number>();
  for (const b of bids) n.set(b.bidder, (n.get(b.bidder) ?? 0) + 1);
  return n;
};

/**
 * q12's invariants (its windows depend on wall time): 10 s aligned windows, one line per
 * (bidder, window), and per bidder the counts add up to its bids. Returns the violations.
 */
export const q12Violations = (lines: readonly string[], bids: BidRow[]): string[] => {
  const bad: string[] = [];
  const seen = new Set<string>();
  const sums = new Map<number, number>();
  for (const l of lines) {
    const r = JSON.parse(l) as {
      bidder: number;
      bid_count: number;
      starttime: number;
      endtime: number;
    };
    if (r.starttime % 10_000 !== 0 || r.endtime !== r.starttime + 10_000 || r.bid_count < 1)
      bad.push(l);
    const id = `${r.bidder}@${r.starttime}`;
    if (seen.has(id)) bad.push(`twice: ${l}`);
    seen.add(id);
    sums.set(r.bidder, (sums.get(r.bidder) ?? 0) + r.bid_count);
  }
  for (const [bidder, n] of bidsPerBidder(bids)) {
    if (sums.get(bidder) !== n)
      bad.push(`bidder ${bidder}: ${sums.get(bidder)} counted, ${n} bids`);
  }
  if (sums.size !== bidsPerBidder(bids).size) bad.push('bidders without bids in the output');
  return bad;
};

interface PersonRow {
  id: number;
  name: string;
  city: string;
  state: string;
  dateTime: number;
}
interface AuctionRow {
  id: number;
  seller: number;
  category: number;
  dateTime: number;
  expires: number;
}
const personsOf = (events: Ev[]) =>
  events.filter((e) => e.type === 'person') as unknown as PersonRow[];
const auctionsOf = (events: Ev[]) =>
  events.filter((e) => e.type === 'auction') as unknown as AuctionRow[];

/** Inner join auction ⋈ person on seller = id, category 10, state in OR, ID, CA. */
export const q3 = (events: Ev[]) => {
  const byId = new Map(personsOf(events).map((p) => [p.id, p]));
  const rows: Record<string, unknown>[] = [];
  for (const a of auctionsOf(events)) {
    const p = byId.get(a.seller);
    if (a.category === 10 && p && ['OR', 'ID', 'CA'].includes(p.state)) {
      rows.push({ name: p.name, city: p.city, state: p.state, id: a.id });
    }
  }
  return done(rows);
};

/**
 * The final value per category: MAX(price) of the bids within [dateTime, expires] of each
 * auction (auctions without one left out), then the average per category, with the count.
 */
export const q4Final = (events: Ev[]) => {
  const auctions = new Map(auctionsOf(events).map((a) => [a.id, a]));
  const max = new Map<number, number>();
  for (const b of bidsOf(events)) {
    const a = auctions.get(b.auction);
    if (a && b.dateTime >= a.dateTime && b.dateTime <= a.expires) {
      max.set(a.id, Math.max(max.get(a.id) ?? -1, b.price));
    }
  }
  const totals = new Map<number, [number, number]>();
  for (const [id, price] of max) {
    const c = auctions.get(id)!.category;
    const t = totals.get(c) ?? [0, 0];
    totals.set(c, [t[0] + price, t[1] + 1]);
  }
  return done([...totals].map(([category, [sum, n]]) => ({ category, avg: sum / n, auctions: n })));
};

/** q4's output reduced to the last update per category (the one with the most auctions). */
export const q4Last = (lines: readonly string[]) => {
  const last = new Map<number, { category: number; auctions: number }>();
  for (const l of lines) {
    const r = JSON.parse(l) as { category: number; auctions: number };
    if ((last.get(r.category)?.auctions ?? 0) < r.auctions) last.set(r.category, r);
  }
  return [...last.values()].map((r) => JSON.stringify(r));
};

/** Persons with an auction (as seller) in the same 10 s tumbling window; one line each. */
export const q8 = (events: Ev[]) => {
  const win = (t: number) => t - (t % 10_000);
  const sellerWindows = new Set(auctionsOf(events).map((a) => `${a.seller}@${win(a.dateTime)}`));
  return done(
    personsOf(events)
      .filter((p) => sellerWindows.has(`${p.id}@${win(p.dateTime)}`))
      .map((p) => ({ id: p.id, name: p.name, starttime: win(p.dateTime) })),
  );
};

/** How many auctions closed with a bid, from q4's expected final lines. */
export const q4Closed = (finalLines: readonly string[]): number =>
  finalLines.reduce((n, l) => {
    const fields = JSON.parse(l) as [string, number][];
    return n + fields.find(([k]) => k === 'auctions')![1];
  }, 0);
