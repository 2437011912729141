import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CheckpointState,
  CheckpointTracker,
  IllegalCheckpointTransition,
} from './checkpoint-tracker.js';

const TIMEOUT = 1000;
const tracker = () => new CheckpointTracker<string>(TIMEOUT);

/** A tracker whose checkpoint 1 (attempt 7, two workers, triggered at t=0) is in `state`. */
const inState = (state: CheckpointState) => {
  const t = tracker();
  t.trigger(1, 7, 2, 0);
  if (state === 'pending') return t;
  t.ack(1, 7, 0, 'a');
  expect(t.ack(1, 7, 1, 'b')).toBe('commit');
  if (state === 'committing') return t;
  if (state === 'completed') t.committed(1, true);
  else t.committed(1, false, 'disk full');
  return t;
};

const STATES: CheckpointState[] = ['pending', 'committing', 'completed', 'declined'];

describe('CheckpointTracker: the happy path', () => {
  it('goes pending -> committing on the last ack -> completed', () => {
    const t = tracker();
    expect(t.busy).toBe(false);
    const c = t.trigger(1, 0, 3, 100);
    expect(c).toMatchObject({ id: 1, attempt: 0, workers: 3, triggeredAt: 100, state: 'pending' });
    expect(t.busy).toBe(true);
    expect(t.ack(1, 0, 2, 'w2')).toBe('acked');
    expect(t.ack(1, 0, 0, 'w0')).toBe('acked');
    expect(t.current?.state).toBe('pending');
    expect(t.ack(1, 0, 1, 'w1')).toBe('commit');
    expect(t.current?.state).toBe('committing');
    expect([...(t.current?.acks.entries() ?? [])].sort()).toEqual([
      [0, 'w0'],
      [1, 'w1'],
      [2, 'w2'],
    ]);
    const done = t.committed(1, true);
    expect(done).toMatchObject({ id: 1, state: 'completed', reason: undefined, orphaned: false });
    expect(t.busy).toBe(false);
    expect(t.current).toBeUndefined();
    expect(t.lastCompleted).toBe(1);
    expect(t.get(1)?.state).toBe('completed');
  });

  it('a single-worker checkpoint commits on its only ack', () => {
    const t = tracker();
    t.trigger(5, 0, 1, 0);
    expect(t.ack(5, 0, 0, 'x')).toBe('commit');
  });
});

describe('CheckpointTracker: acks', () => {
  it('ignores repeats, other ids, other attempts and workers out of range', () => {
    const t = tracker();
    t.trigger(1, 3, 2, 0);
    expect(t.ack(1, 3, 0, 'first')).toBe('acked');
    expect(t.ack(1, 3, 0, 'again')).toBe('ignored');
    expect(t.current?.acks.get(0)).toBe('first');
    expect(t.ack(2, 3, 1, 'x')).toBe('ignored');
    expect(t.ack(0, 3, 1, 'x')).toBe('ignored');
    expect(t.ack(1, 2, 1, 'old attempt')).toBe('ignored');
    expect(t.ack(1, 3, 2, 'x')).toBe('ignored');
    expect(t.ack(1, 3, -1, 'x')).toBe('ignored');
    expect(t.ack(1, 3, 0.5, 'x')).toBe('ignored');
    expect(t.current?.state).toBe('pending');
    expect(t.current?.acks.size).toBe(1);
  });

  it.each(STATES.filter((s) => s !== 'pending'))('are ignored when %s', (state) => {
    const t = inState(state);
    expect(t.ack(1, 7, 0, 'late')).toBe('ignored');
    expect(t.get(1)?.state).toBe(state);
  });

  it('are ignored with nothing in flight', () => {
    expect(tracker().ack(1, 0, 0, 'x')).toBe('ignored');
  });
});

describe('CheckpointTracker: declines', () => {
  it('a pending checkpoint is declined with its reason, and the next one can start', () => {
    const t = inState('pending');
    t.ack(1, 7, 0, 'a');
    const c = t.decline(1, 'worker 1 declined checkpoint 1: newer barrier');
    expect(c).toMatchObject({ id: 1, state: 'declined' });
    expect(c?.reason).toBe('worker 1 declined checkpoint 1: newer barrier');
    expect(t.busy).toBe(false);
    expect(t.lastCompleted).toBeUndefined();
    expect(t.trigger(2, 7, 2, 10).state).toBe('pending');
  });

  it.each(STATES.filter((s) => s !== 'pending'))('a %s checkpoint cannot be declined', (state) => {
    const t = inState(state);
    expect(t.decline(1, 'late')).toBeUndefined();
    expect(t.get(1)?.state).toBe(state);
  });

  it('declining an unknown or other id does nothing', () => {
    const t = inState('pending');
    expect(t.decline(2, 'x')).toBeUndefined();
    expect(tracker().decline(1, 'x')).toBeUndefined();
    expect(t.current?.state).toBe('pending');
  });
});

describe('CheckpointTracker: timeout', () => {
  it('rejects a timeout that is not positive', () => {
    expect(() => new CheckpointTracker(0)).toThrow(/> 0 ms/);
    expect(() => new CheckpointTracker(Number.NaN)).toThrow(/> 0 ms/);
  });

  it('declines a pending checkpoint once it is timeoutMs old, not before', () => {
    const t = tracker();
    t.trigger(4, 0, 2, 500);
    expect(t.expire(4, 500 + TIMEOUT - 1)).toBeUndefined();
    expect(t.current?.state).toBe('pending');
    expect(t.expire(3, 500 + TIMEOUT)).toBeUndefined();
    const c = t.expire(4, 500 + TIMEOUT);
    expect(c?.state).toBe('declined');
    expect(c?.reason).toBe(`checkpoint 4 expired after ${TIMEOUT} ms`);
    expect(t.busy).toBe(false);
  });

  it.each(STATES.filter((s) => s !== 'pending'))('does not expire a %s checkpoint', (state) => {
    const t = inState(state);
    expect(t.expire(1, 10 * TIMEOUT)).toBeUndefined();
    expect(t.get(1)?.state).toBe(state);
  });
});

describe('CheckpointTracker: attempt failure', () => {
  it('declines a pending checkpoint of the failed attempt', () => {
    const t = inState('pending');
    const r = t.attemptFailed(7, 'worker crashed');
    expect(r.kind).toBe('declined');
    expect(t.get(1)).toMatchObject({ state: 'declined', reason: 'worker crashed' });
    expect(t.busy).toBe(false);
  });

  it('orphans a committing checkpoint, which still completes from disk', () => {
    const t = inState('committing');
    const r = t.attemptFailed(7, 'worker crashed');
    expect(r.kind).toBe('orphaned');
    expect(t.current).toMatchObject({ state: 'committing', orphaned: true });
    expect(t.busy).toBe(true);
    // Nothing else may decline it meanwhile.
    expect(t.decline(1, 'x')).toBeUndefined();
    expect(t.expire(1, 100 * TIMEOUT)).toBeUndefined();
    expect(t.attemptFailed(7, 'again').kind).toBe('orphaned');
    expect(() => t.trigger(2, 8, 2, 0)).toThrow(IllegalCheckpointTransition);
    expect(t.committed(1, true)).toMatchObject({ state: 'completed', orphaned: true });
    expect(t.lastCompleted).toBe(1);
  });

  it('orphans a committing checkpoint that is declined when _metadata is not on disk', () => {
    const t = inState('committing');
    t.attemptFailed(7, 'worker crashed');
    const c = t.committed(1, false, 'no valid _metadata after the commit: ENOSPC');
    expect(c).toMatchObject({ state: 'declined', orphaned: true });
    expect(c.reason).toBe('no valid _metadata after the commit: ENOSPC');
    expect(t.lastCompleted).toBeUndefined();
  });

  it('leaves a checkpoint of another attempt alone, and does nothing with none in flight', () => {
    const t = inState('pending');
    expect(t.attemptFailed(6, 'x').kind).toBe('none');
    expect(t.current?.state).toBe('pending');
    expect(tracker().attemptFailed(0, 'x').kind).toBe('none');
  });
});

describe('CheckpointTracker: illegal transitions', () => {
  it.each(['pending', 'committing'] as const)('cannot trigger while one is %s', (state) => {
    const t = inState(state);
    expect(() => t.trigger(2, 7, 2, 0)).toThrow(/checkpoint 1 is/);
  });

  it('needs increasing ids and at least one worker', () => {
    const t = inState('completed');
    expect(() => t.trigger(1, 7, 2, 0)).toThrow(/must increase: 1 after 1/);
    expect(() => t.trigger(0, 7, 2, 0)).toThrow(IllegalCheckpointTransition);
    expect(() => t.trigger(2, 7, 0, 0)).toThrow(/>= 1 worker/);
    expect(t.trigger(9, 7, 1, 0).id).toBe(9);
  });

  it.each(['pending', 'completed', 'declined'] as const)(
    'a %s checkpoint has no commit outcome',
    (state) => {
      const t = inState(state);
      expect(() => t.committed(1, true)).toThrow(
        new RegExp(`checkpoint 1 is ${state}, not committing`),
      );
      expect(t.get(1)?.state).toBe(state);
    },
  );

  it('an unknown checkpoint has no commit outcome', () => {
    expect(() => tracker().committed(3, true)).toThrow(/checkpoint 3 is unknown/);
  });

  it('forgets all but the last 16 settled checkpoints', () => {
    const t = tracker();
    for (let id = 1; id <= 20; id++) {
      t.trigger(id, 0, 1, 0);
      t.ack(id, 0, 0, 'x');
      t.committed(id, true);
    }
    expect(t.get(4)).toBeUndefined();
    expect(t.get(5)?.state).toBe('completed');
    expect(t.lastCompleted).toBe(20);
  });
});

type Event =
  | { kind: 'trigger'; workers: number }
  | { kind: 'ack'; worker: number; stale: boolean }
  | { kind: 'decline' }
  | { kind: 'expire'; dt: number }
  | { kind: 'attemptFailed' }
  | { kind: 'committed'; valid: boolean };

const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant('trigger' as const), workers: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    kind: fc.constant('ack' as const),
    worker: fc.integer({ min: -1, max: 3 }),
    stale: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('decline' as const) }),
  fc.record({ kind: fc.constant('expire' as const), dt: fc.integer({ min: 0, max: 2 * TIMEOUT }) }),
  fc.record({ kind: fc.constant('attemptFailed' as const) }),
  fc.record({ kind: fc.constant('committed' as const), valid: fc.boolean() }),
);

const LEGAL = new Set([
  'pending>committing',
  'pending>declined',
  'committing>completed',
  'committing>declined',
]);

describe('CheckpointTracker: random event sequences', () => {
  it('only ever make legal transitions, one checkpoint in flight at a time', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const t = tracker();
        let nextId = 1;
        let attempt = 0;
        let now = 0;
        const seen = new Map<number, CheckpointState>();
        const check = () => {
          for (const [id, before] of seen) {
            const after = t.get(id)?.state;
            if (after === undefined || after === before) continue;
            expect(LEGAL.has(`${before}>${after}`)).toBe(true);
            seen.set(id, after);
          }
          const c = t.current;
          if (c) seen.set(c.id, seen.get(c.id) ?? c.state);
          expect(t.busy).toBe(c !== undefined);
          if (c) expect(['pending', 'committing']).toContain(c.state);
        };
        for (const e of events) {
          const c = t.current;
          switch (e.kind) {
            case 'trigger':
              if (c) expect(() => t.trigger(nextId, attempt, e.workers, now)).toThrow();
              else seen.set(t.trigger(nextId++, attempt, e.workers, now).id, 'pending');
              break;
            case 'ack': {
              if (!c) break;
              const before = c.state;
              const r = t.ack(c.id, e.stale ? attempt - 1 : attempt, e.worker, 'x');
              if (r === 'commit') expect(before).toBe('pending');
              if (before !== 'pending' || e.stale) expect(r).toBe('ignored');
              break;
            }
            case 'decline':
              if (c) {
                const before = c.state;
                const r = t.decline(c.id, 'no');
                expect(r?.state).toBe(before === 'pending' ? 'declined' : undefined);
              }
              break;
            case 'expire':
              now += e.dt;
              if (c) t.expire(c.id, now);
              break;
            case 'attemptFailed': {
              const wasCommitting = c?.state === 'committing';
              const r = t.attemptFailed(attempt, 'crash');
              if (wasCommitting) expect(r.kind).toBe('orphaned');
              if (!wasCommitting) attempt++;
              break;
            }
            case 'committed':
              if (c?.state === 'committing') {
                const r = t.committed(c.id, e.valid);
                expect(r.state).toBe(e.valid ? 'completed' : 'declined');
                if (e.valid) expect(t.lastCompleted).toBe(c.id);
                // A new attempt starts only after the commit outcome is known.
                if (r.orphaned) attempt++;
              } else if (c) {
                expect(() => t.committed(c.id, e.valid)).toThrow(IllegalCheckpointTransition);
              }
              break;
          }
          check();
        }
      }),
      { numRuns: 500 },
    );
  });
});
