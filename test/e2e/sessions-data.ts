/**
 * Session-window test input, shared by sessions.test.ts and cluster-sessions.test.ts: a seeded
 * generator of per-user event walks, dealt over files out of order by less than the watermark
 * bound, the reference sessions, and a count of "bridging" events.
 */
/** mulberry32: a tiny seeded PRNG, floats in [0, 1). */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

export const T0 = 1_700_000_000_000;
/** Events of a file are out of order by less than this (the watermark bound is 5000 ms). */
export const MAX_DELAY_MS = 3000;

/**
 * Deals `events` over `files` files at random; each file is in "arrival" order, arrival = event
 * time + a random delay in [0, MAX_DELAY_MS), so a file is out of order by < MAX_DELAY_MS.
 */
export const dealIntoFiles = <E extends { ts: number }>(
  events: readonly E[],
  files: number,
  rand: () => number,
): E[][] => {
  const buckets: { e: E; arrival: number; seq: number }[][] = Array.from(
    { length: files },
    () => [],
  );
  events.forEach((e, seq) => {
    buckets[Math.floor(rand() * files)]!.push({
      e,
      arrival: e.ts + Math.floor(rand() * MAX_DELAY_MS),
      seq,
    });
  });
  return buckets.map((b) =>
    b.sort((x, y) => x.arrival - y.arrival || x.seq - y.seq).map((x) => x.e),
  );
};

// ---------------------------------------------------------------------------------------------
// Sessions

export interface Ev {
  user: string;
  ts: number;
}

export const GAP_MS = 1000;

/**
 * Per user a walk in event time: steps of 0 (equal timestamps), 50..900 ms (same session),
 * exactly the gap (same session: windows [t, t + gap) and [t + gap, ...) touch, and touching
 * session windows merge, as in Flink) or 1050..6000 ms (a new session). Users start within the
 * first 20 s.
 */
export const sessionEvents = (seed: number, users: number, perUser: number): Ev[] => {
  const rand = prng(seed);
  const events: Ev[] = [];
  for (let u = 0; u < users; u++) {
    const user = `user-${u}`;
    let ts = T0 + Math.floor(rand() * 20_000);
    for (let i = 0; i < perUser; i++) {
      events.push({ user, ts });
      const r = rand();
      ts +=
        r < 0.1
          ? 0
          : r < 0.65
            ? 50 * (1 + Math.floor(rand() * 18))
            : r < 0.7
              ? GAP_MS
              : 1050 + 50 * Math.floor(rand() * 100);
    }
  }
  return events;
};

/** The reference: per user, sorted times split where two neighbours are more than gap apart. */
export const referenceSessions = (events: readonly Ev[], gap: number): string[] => {
  const byUser = new Map<string, number[]>();
  for (const e of events) {
    const ts = byUser.get(e.user) ?? [];
    ts.push(e.ts);
    byUser.set(e.user, ts);
  }
  const out: string[] = [];
  for (const [user, ts] of byUser) {
    ts.sort((a, b) => a - b);
    let start = ts[0]!;
    let count = 0;
    for (let i = 0; i < ts.length; i++) {
      if (i > 0 && ts[i]! - ts[i - 1]! > gap) {
        out.push(JSON.stringify({ user, start, end: ts[i - 1]! + gap, count }));
        start = ts[i]!;
        count = 0;
      }
      count++;
    }
    out.push(JSON.stringify({ user, start, end: ts[ts.length - 1]! + gap, count }));
  }
  return out;
};

/**
 * Events that bridge two sessions within their own file: when the event arrives, the file has
 * already had events of its user on both sides of it, more than the gap apart (two sessions),
 * each at most the gap from it.
 */
export const countBridges = (files: readonly Ev[][], gap: number): number => {
  let bridges = 0;
  for (const file of files) {
    const seen = new Map<string, number[]>();
    for (const e of file) {
      const prior = seen.get(e.user) ?? [];
      let lo = Number.NEGATIVE_INFINITY;
      let hi = Number.POSITIVE_INFINITY;
      for (const t of prior) {
        if (t <= e.ts && t > lo) lo = t;
        if (t > e.ts && t < hi) hi = t;
      }
      if (hi - lo > gap && e.ts - lo <= gap && hi - e.ts <= gap) bridges++;
      prior.push(e.ts);
      seen.set(e.user, prior);
    }
  }
  return bridges;
};
