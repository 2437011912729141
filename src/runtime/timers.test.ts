import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeKeyGroupRange } from '../keygroups/index.js';
import { BACKENDS, disposeBackends, propertyRuns } from '../state/backend.testkit.js';
import type { ProcessingClock, TimeDomain } from './time.js';
import { KeyedTimers } from './timers.js';

/** A clock tests move by hand; due callbacks run on `advance`. */
class ManualClock implements ProcessingClock {
  private pending: Array<{ at: number; cb: () => void; live: boolean }> = [];
  constructor(private time = 0) {}
  now(): number {
    return this.time;
  }
  setTimer(at: number, cb: () => void) {
    const t = { at, cb, live: true };
    this.pending.push(t);
    return {
      cancel: () => {
        t.live = false;
      },
    };
  }
  advance(ms: number): void {
    this.time += ms;
    const due = this.pending.filter((t) => t.live && t.at <= this.time);
    this.pending = this.pending.filter((t) => !due.includes(t));
    for (const t of due) t.cb();
  }
  get armed(): number {
    return this.pending.filter((t) => t.live).length;
  }
}

type Fired = [TimeDomain, number, string];

const MAX_P = 16;

describe.each(BACKENDS)('$name backend', (under) => {
  const { create } = under;

  const setup = (range = { start: 0, end: MAX_P - 1 }, clock = new ManualClock()) => {
    const backend = create({ keyGroupRange: range, maxParallelism: MAX_P });
    const fired: Fired[] = [];
    const mail: Array<() => void> = [];
    let timers: KeyedTimers;
    const onTimer = (domain: TimeDomain, ts: number, key: unknown) => {
      expect(timers.currentKey).toBe(key);
      fired.push([domain, ts, key as string]);
    };
    timers = new KeyedTimers({
      backend,
      maxParallelism: MAX_P,
      clock,
      runInMailbox: (a) => mail.push(a),
      onTimer,
    });
    timers.open();
    const runMail = () => {
      while (mail.length > 0) mail.shift()!();
    };
    return { backend, timers, fired, clock, runMail };
  };

  describe('KeyedTimers', () => {
    it('fires event-time timers in timestamp order once the watermark reaches them, once per (key, timestamp)', () => {
      const { timers, fired } = setup();
      for (const [key, ts] of [
        ['a', 30],
        ['b', 10],
        ['a', 10],
        ['a', 30], // duplicate
        ['c', 20],
      ] as const) {
        timers.setCurrentKey(key);
        timers.registerEventTimeTimer(ts);
      }
      timers.advanceWatermark(9);
      expect(fired).toEqual([]);
      timers.advanceWatermark(20);
      expect(fired).toEqual([
        ['event', 10, 'b'],
        ['event', 10, 'a'],
        ['event', 20, 'c'],
      ]);
      timers.advanceWatermark(15); // never backwards
      expect(timers.currentWatermark()).toBe(20);
      timers.advanceWatermark(Number.POSITIVE_INFINITY);
      expect(fired.slice(3)).toEqual([['event', 30, 'a']]);
    });

    it('deletes timers, and re-registering a deleted one fires it once', () => {
      const { timers, fired } = setup();
      timers.setCurrentKey('a');
      timers.registerEventTimeTimer(5);
      timers.registerEventTimeTimer(6);
      timers.deleteEventTimeTimer(5);
      timers.deleteEventTimeTimer(6);
      timers.registerEventTimeTimer(6);
      timers.advanceWatermark(100);
      expect(fired).toEqual([['event', 6, 'a']]);
    });

    it('fires timers registered while firing when they are already due', () => {
      const backend = create({
        keyGroupRange: { start: 0, end: MAX_P - 1 },
        maxParallelism: MAX_P,
      });
      const fired: number[] = [];
      const timers: KeyedTimers = new KeyedTimers({
        backend,
        maxParallelism: MAX_P,
        clock: new ManualClock(),
        runInMailbox: (a) => a(),
        onTimer: (_d, ts) => {
          fired.push(ts);
          if (ts < 3) timers.registerEventTimeTimer(ts + 1);
        },
      });
      timers.open();
      timers.setCurrentKey('k');
      timers.registerEventTimeTimer(1);
      timers.advanceWatermark(10);
      expect(fired).toEqual([1, 2, 3]);
    });

    it('a firing timer re-registered, deleted or moved by its own callback is stored and fires as if deleted before the callback', () => {
      const backend = create({
        keyGroupRange: { start: 0, end: MAX_P - 1 },
        maxParallelism: MAX_P,
      });
      const fired: Array<[string, number]> = [];
      // Per key, what its callback does at each firing timestamp.
      const actions: Record<string, (ts: number) => void> = {
        // Same timestamp again: a new timer, fired again in the same advance.
        again: (ts) => {
          if (fired.filter(([k]) => k === 'again').length < 2) timers.registerEventTimeTimer(ts);
        },
        // Deletes itself, then registers itself: fires again.
        delThenReg: (ts) => {
          if (fired.filter(([k]) => k === 'delThenReg').length < 2) {
            timers.deleteEventTimeTimer(ts);
            timers.registerEventTimeTimer(ts);
          }
        },
        // Registers itself, then deletes it: gone.
        regThenDel: (ts) => {
          timers.registerEventTimeTimer(ts);
          timers.deleteEventTimeTimer(ts);
        },
        // Moves itself later (a lazily re-armed session timer), past this advance.
        rearm: (ts) => {
          if (ts < 200) timers.registerEventTimeTimer(ts + 100);
        },
        // Moves itself later, still due in this advance; and deletes its own firing timer.
        rearmDue: (ts) => {
          timers.deleteEventTimeTimer(ts);
          if (ts < 12) timers.registerEventTimeTimer(ts + 1);
        },
      };
      const timers: KeyedTimers = new KeyedTimers({
        backend,
        maxParallelism: MAX_P,
        clock: new ManualClock(),
        runInMailbox: (a) => a(),
        onTimer: (_d, ts, key) => {
          fired.push([key as string, ts]);
          actions[key as string]!(ts);
        },
      });
      timers.open();
      for (const key of Object.keys(actions)) {
        timers.setCurrentKey(key);
        timers.registerEventTimeTimer(10);
      }
      timers.advanceWatermark(50);
      expect(fired).toEqual([
        ['again', 10],
        ['delThenReg', 10],
        ['regThenDel', 10],
        ['rearm', 10],
        ['rearmDue', 10],
        ['again', 10],
        ['delThenReg', 10],
        ['rearmDue', 11],
        ['rearmDue', 12],
      ]);
      const stored: Array<[unknown, number[]]> = [];
      backend.forEachEntry('__eddy.timers.event', (value, key) => {
        stored.push([key, [...(value as Map<number, unknown>).keys()]]);
      });
      expect(stored).toEqual([['rearm', [110]]]);
      timers.advanceWatermark(Number.POSITIVE_INFINITY);
      expect(fired.slice(9)).toEqual([
        ['rearm', 110],
        ['rearm', 210],
      ]);
    });

    it('fires any mix of timers by (timestamp, registration order), each (key, timestamp) once', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              key: fc.constantFrom('a', 'b', 'c', 'd'),
              ts: fc.integer({ min: 0, max: 40 }),
            }),
            { maxLength: 200 },
          ),
          fc.array(fc.integer({ min: 0, max: 45 }), { maxLength: 5 }),
          (timers_, watermarks) => {
            const { timers, fired } = setup();
            const expected: Fired[] = [];
            const seen = new Set<string>();
            for (const { key, ts } of timers_) {
              timers.setCurrentKey(key);
              timers.registerEventTimeTimer(ts);
              if (!seen.has(`${key}@${ts}`)) expected.push(['event', ts, key]);
              seen.add(`${key}@${ts}`);
            }
            // Stable sort: ties keep registration order.
            expected.sort((x, y) => x[1] - y[1]);
            for (const w of watermarks) timers.advanceWatermark(w);
            timers.advanceWatermark(Number.POSITIVE_INFINITY);
            expect(fired).toEqual(expected);
          },
        ),
        { numRuns: propertyRuns(under, 200), plugins: [fc.afterEach(disposeBackends)] },
      );
    });

    it('fires exactly the pending timers, in timestamp order, under any mix of registrations, deletions and advances', () => {
      const op = fc.oneof(
        fc.tuple(fc.constant('reg' as const), fc.constantFrom('a', 'b', 'c'), fc.nat(30)),
        fc.tuple(fc.constant('del' as const), fc.constantFrom('a', 'b', 'c'), fc.nat(30)),
        fc.tuple(fc.constant('adv' as const), fc.constant(''), fc.nat(40)),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
          const pending = new Set<string>();
          const again = new Set<string>();
          let watermark = Number.NEGATIVE_INFINITY;
          let last = Number.NEGATIVE_INFINITY;
          const backend = create({
            keyGroupRange: { start: 0, end: MAX_P - 1 },
            maxParallelism: MAX_P,
          });
          const timers: KeyedTimers = new KeyedTimers({
            backend,
            maxParallelism: MAX_P,
            clock: new ManualClock(),
            runInMailbox: (a) => a(),
            onTimer: (_d, ts, key) => {
              const id = `${key as string}@${ts}`;
              expect(pending.has(id)).toBe(true);
              expect(ts).toBeLessThanOrEqual(watermark);
              expect(ts).toBeGreaterThanOrEqual(last);
              last = ts;
              pending.delete(id);
              // Callbacks re-arm later, re-register themselves, or delete other timers.
              if (ts % 3 === 0 && ts < 60) {
                timers.registerEventTimeTimer(ts + 7);
                pending.add(`${key as string}@${ts + 7}`);
              }
              if (ts % 4 === 1) {
                timers.deleteEventTimeTimer(ts + 2);
                pending.delete(`${key as string}@${ts + 2}`);
              }
              if (ts % 5 === 2 && !again.has(id)) {
                again.add(id);
                timers.registerEventTimeTimer(ts);
                pending.add(id);
              }
            },
          });
          timers.open();
          for (const [kind, key, n] of ops) {
            if (kind === 'adv') {
              last = Number.NEGATIVE_INFINITY;
              watermark = Math.max(watermark, n);
              timers.advanceWatermark(n);
              for (const id of pending) expect(Number(id.split('@')[1])).toBeGreaterThan(watermark);
              continue;
            }
            timers.setCurrentKey(key);
            if (kind === 'reg') {
              timers.registerEventTimeTimer(n);
              pending.add(`${key}@${n}`);
            } else {
              timers.deleteEventTimeTimer(n);
              pending.delete(`${key}@${n}`);
            }
          }
          last = Number.NEGATIVE_INFINITY;
          watermark = Number.POSITIVE_INFINITY;
          timers.advanceWatermark(watermark);
          expect(pending.size).toBe(0);
        }),
        { numRuns: propertyRuns(under, 300), plugins: [fc.afterEach(disposeBackends)] },
      );
    });

    it('fires processing-time timers through the mailbox when the clock passes them', () => {
      const { timers, fired, clock, runMail } = setup();
      timers.setCurrentKey('x');
      timers.registerProcessingTimeTimer(100);
      timers.registerProcessingTimeTimer(50);
      expect(clock.armed).toBe(1); // one wake-up, for the earliest
      clock.advance(49);
      runMail();
      expect(fired).toEqual([]);
      clock.advance(1);
      expect(fired).toEqual([]); // only queued: user code runs on the subtask's loop
      runMail();
      expect(fired).toEqual([['processing', 50, 'x']]);
      clock.advance(60);
      runMail();
      expect(fired).toEqual([
        ['processing', 50, 'x'],
        ['processing', 100, 'x'],
      ]);
      expect(clock.armed).toBe(0);
    });

    it('refuses timers without a current key or with a non-finite timestamp', () => {
      const { timers } = setup();
      expect(() => timers.registerEventTimeTimer(1)).toThrow(/no current key/);
      timers.setCurrentKey('a');
      expect(() => timers.registerEventTimeTimer(Number.NaN)).toThrow(/finite timestamp/);
    });
  });

  describe('KeyedTimers across snapshot and restore', () => {
    const arb = fc.record({
      timers: fc.array(
        fc.tuple(
          fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'),
          fc.integer({ min: 0, max: 50 }),
          fc.constantFrom<TimeDomain>('event', 'processing'),
        ),
        { maxLength: 40 },
      ),
      watermarkBefore: fc.integer({ min: -1, max: 50 }),
      parallelism: fc.integer({ min: 1, max: 5 }),
    });

    it('restored at any parallelism, every timer fires exactly once overall, with its key', () => {
      fc.assert(
        fc.property(arb, ({ timers: regs, watermarkBefore, parallelism }) => {
          const clock = new ManualClock();
          const a = setup(undefined, clock);
          for (const [key, ts, domain] of regs) {
            a.timers.setCurrentKey(key);
            if (domain === 'event') a.timers.registerEventTimeTimer(ts);
            else a.timers.registerProcessingTimeTimer(ts + 1000);
          }
          a.timers.advanceWatermark(watermarkBefore);
          const snapshot = a.backend.snapshot();
          const before = [...a.fired];

          // Restore into `parallelism` backends, each owning its key-group range, lazily.
          const restored = Array.from({ length: parallelism }, (_, i) => {
            const range = computeKeyGroupRange(MAX_P, parallelism, i);
            const backend = create({
              keyGroupRange: range,
              maxParallelism: MAX_P,
            });
            for (const s of snapshot) {
              if (s.keyGroup >= range.start && s.keyGroup <= range.end) {
                backend.restoreKeyGroupLazily({
                  keyGroup: s.keyGroup,
                  load: () => structuredClone(s),
                });
              }
            }
            const fired: Fired[] = [];
            const timers = new KeyedTimers({
              backend,
              maxParallelism: MAX_P,
              clock,
              runInMailbox: (act) => act(),
              onTimer: (d, ts, key) => fired.push([d, ts, key as string]),
            });
            timers.open();
            return { timers, fired };
          });
          for (const r of restored) r.timers.advanceWatermark(Number.POSITIVE_INFINITY);
          clock.advance(10_000);

          const expected = new Map<string, Fired>();
          for (const [key, ts, domain] of regs) {
            const t = domain === 'event' ? ts : ts + 1000;
            expected.set(`${domain}|${t}|${key}`, [domain, t, key]);
          }
          const all = [...before, ...restored.flatMap((r) => r.fired)];
          const ids = all.map(([d, t, k]) => `${d}|${t}|${k}`);
          expect(new Set(ids).size).toBe(ids.length); // none fired twice
          expect(new Set(ids)).toEqual(new Set(expected.keys())); // none lost
          // Event-time timers at or below the old watermark fired before the snapshot only.
          for (const [d, t] of restored.flatMap((r) => r.fired)) {
            if (d === 'event') expect(t).toBeGreaterThan(watermarkBefore);
          }
        }),
        { numRuns: propertyRuns(under, 150), plugins: [fc.afterEach(disposeBackends)] },
      );
    });
  });
});
