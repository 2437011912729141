/** Unit tests of the NATS connectors' pure parts: subjects, positions, message ids, outages. */
import { describe, expect, it } from 'vitest';
import type { SplitEnumeratorContext } from '../../runtime/io.js';
import { dealContiguous } from '../testing.js';
import { backoffMs, Outage } from './connection.js';
import { NatsSplitEnumerator } from './enumerator.js';
import { msgIdPrefix, natsMsgId } from './msg-id.js';
import {
  assignedTo,
  boundedStep,
  checkSequenceSplit,
  finishedAtStart,
  type SequenceSplitState,
} from './positions.js';
import { isWildcard, resolveSubjects, subjectMatches, subjectProblem } from './subjects.js';

describe('subject matching', () => {
  it.each([
    ['orders.*', 'orders.eu', true],
    ['orders.*', 'orders.eu.paid', false],
    ['orders.>', 'orders.eu.paid', true],
    ['orders.>', 'orders', false],
    ['*.paid', 'eu.paid', true],
    ['orders.eu', 'orders.eu', true],
    ['orders.eu', 'orders.us', false],
    ['>', 'a.b.c', true],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
  ])('%s matches %s: %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
  });

  it('recognises wildcards only as whole tokens', () => {
    expect(isWildcard('a.*')).toBe(true);
    expect(isWildcard('a.>')).toBe(true);
    expect(isWildcard('a.b')).toBe(false);
    expect(subjectProblem('a.b*')).toMatch(/whole tokens/);
    expect(subjectProblem('a.>.b')).toMatch(/last token/);
    expect(subjectProblem('a..b')).toMatch(/empty token/);
    expect(subjectProblem('')).toMatch(/empty/);
    expect(subjectProblem('a b')).toMatch(/whitespace/);
    expect(subjectProblem('orders.*.paid')).toBeUndefined();
  });
});

describe('resolveSubjects', () => {
  const stream = {
    configured: ['orders.>', 'audit'],
    present: ['orders.us', 'orders.eu', 'orders.eu.x'],
  };

  it('defaults to every present subject plus the concrete configured ones, sorted', () => {
    expect(resolveSubjects(undefined, stream)).toEqual({
      subjects: ['audit', 'orders.eu', 'orders.eu.x', 'orders.us'],
    });
  });

  it('resolves patterns against present subjects and keeps concrete ones without messages', () => {
    expect(resolveSubjects(['orders.*', 'orders.asia'], stream)).toEqual({
      subjects: ['orders.asia', 'orders.eu', 'orders.us'],
    });
    // A subject named twice (directly and by a pattern) is one split.
    expect(resolveSubjects(['orders.eu', 'orders.*'], stream)).toEqual({
      subjects: ['orders.eu', 'orders.us'],
    });
  });

  it('reports a concrete subject outside the stream, and patterns matching nothing', () => {
    expect(resolveSubjects(['payments.x'], stream)).toEqual({
      problem: { kind: 'outside', subject: 'payments.x' },
    });
    expect(resolveSubjects(['orders.*.y'], stream)).toEqual({
      problem: { kind: 'none', requested: ['orders.*.y'] },
    });
    expect(resolveSubjects(undefined, { configured: ['x.>'], present: [] })).toEqual({
      problem: { kind: 'none', requested: undefined },
    });
  });
});

describe('sequence split positions', () => {
  const split = (name: string, position: number): SequenceSplitState => ({
    split: name,
    position,
    finished: false,
    of: 3,
  });

  it('deals split k to reader k % p', () => {
    const splits = ['a', 'b', 'c', 'd', 'e'];
    expect(assignedTo(splits, 2, 0)).toEqual(['a', 'c', 'e']);
    expect(assignedTo(splits, 2, 1)).toEqual(['b', 'd']);
    expect(assignedTo(splits, 7, 6)).toEqual([]);
  });

  it('re-deals positions at any parallelism with every split exactly once', () => {
    const elements = [split('a', 5), split('b', 0), split('c', 99)];
    for (let p = 1; p <= 5; p++) {
      const dealt = dealContiguous(elements, p);
      expect(dealt.flat()).toEqual(elements);
    }
  });

  it('checks restored elements and copies only known fields', () => {
    const e = { split: 'a', position: 3, end: 9, finished: false, of: 2, extra: 1 };
    expect(checkSequenceSplit(e, 'x')).toEqual({
      split: 'a',
      position: 3,
      end: 9,
      finished: false,
      of: 2,
    });
    expect(() =>
      checkSequenceSplit({ split: 'a', position: -1, finished: false }, 'restored'),
    ).toThrow(/restored is not a split position/);
    expect(() => checkSequenceSplit(null, 'x')).toThrow(/EDDY_STATE|not a split/);
  });

  it('bounded steps: emit up to the bound, finish at it, drop past it', () => {
    expect(boundedStep(3, 10, 4)).toBe('emit');
    expect(boundedStep(10, 10, 4)).toBe('emit-last');
    // Nothing pending after 7: 8..10 were deleted, the split is done after 7.
    expect(boundedStep(7, 10, 0)).toBe('emit-last');
    expect(boundedStep(11, 10, 0)).toBe('beyond');
    expect(boundedStep(3, 10, undefined)).toBe('emit');
  });

  it('a bounded split at or past its bound starts finished; an unbounded one never', () => {
    expect(finishedAtStart({ split: 'a', position: 10, end: 10, finished: false })).toBe(true);
    expect(finishedAtStart({ split: 'a', position: 0, end: 0, finished: false })).toBe(true);
    expect(finishedAtStart({ split: 'a', position: 9, end: 10, finished: false })).toBe(false);
    expect(finishedAtStart({ split: 'a', position: 1e6, finished: false })).toBe(false);
  });
});

describe('message ids', () => {
  it('derive from lineage, sink uid, subtask, checkpoint and index', () => {
    const prefix = msgIdPrefix('L1', 'nats-sink-3', 2);
    expect(natsMsgId(prefix, 7, 41)).toBe('L1:nats-sink-3:2:7:41');
  });

  it('are unique across subtasks, checkpoints and indices', () => {
    const ids = new Set<string>();
    for (let s = 0; s < 3; s++) {
      for (let c = 1; c <= 3; c++) {
        for (let i = 0; i < 20; i++) ids.add(natsMsgId(msgIdPrefix('L', 'u', s), c, i));
      }
    }
    expect(ids.size).toBe(3 * 3 * 20);
  });
});

describe('outage clock', () => {
  it('runs from the first failure until a success, exceeded past its limit', () => {
    let now = 0;
    const o = new Outage(100, () => now);
    expect(o.active).toBe(false);
    o.fail();
    now = 60;
    o.fail(); // does not restart the clock
    expect(o.elapsedMs).toBe(60);
    expect(o.exceeded).toBe(false);
    now = 101;
    expect(o.exceeded).toBe(true);
    o.ok();
    expect(o.active).toBe(false);
    expect(o.exceeded).toBe(false);
  });

  it('backs off from 100 ms doubling up to 2 s', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map(backoffMs)).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
  });
});

describe('NatsSplitEnumerator', () => {
  const ctxFor = (parallelism: number, restored?: { state: unknown }) => {
    const assigned = new Map<number, unknown[]>();
    const noMore: number[] = [];
    const ctx: SplitEnumeratorContext = {
      parallelism,
      restoredState: restored?.state,
      isRestored: restored !== undefined,
      assignSplits: (s, splits) => void assigned.set(s, [...(assigned.get(s) ?? []), ...splits]),
      signalNoMoreSplits: (s) => void noMore.push(s),
      sendEventToReader: () => {},
      fail: (e) => {
        throw e;
      },
    };
    return { ctx, assigned, noMore };
  };
  const options = { servers: 'nats://x', stream: 'S' };
  const discovered = ['a', 'b', 'c'].map(
    (split): SequenceSplitState => ({ split, position: 0, finished: false, of: 3 }),
  );

  it('deals discovered subjects k -> k % p, once per reader, and snapshots the unassigned', async () => {
    const { ctx, assigned, noMore } = ctxFor(2);
    const e = new NatsSplitEnumerator(ctx, options, async () => discovered);
    await e.start();
    e.addReader(1);
    expect(e.snapshotState(1)).toEqual({ unassigned: [discovered[0], discovered[2]], splits: 3 });
    e.addReader(0);
    e.addReader(0); // a reader registering again gets nothing twice
    expect(assigned.get(0)).toEqual([discovered[0], discovered[2]]);
    expect(assigned.get(1)).toEqual([discovered[1]]);
    expect(noMore).toEqual([1, 0, 0]);
    expect(e.snapshotState(2)).toEqual({ unassigned: [], splits: 3 });
  });

  it('restored: assigns only what its state lists as unassigned, without asking the server', async () => {
    const { ctx, assigned } = ctxFor(3, { state: { unassigned: [discovered[2]], splits: 3 } });
    const e = new NatsSplitEnumerator(ctx, options, async () => {
      throw new Error('no discovery on restore');
    });
    await e.start();
    for (let i = 0; i < 3; i++) e.addReader(i);
    expect([...assigned.values()].flat()).toEqual([discovered[2]]);
    const bad = ctxFor(1, { state: { unassigned: 'x' } });
    await expect(new NatsSplitEnumerator(bad.ctx, options).start()).rejects.toThrow(
      /not a split list/,
    );
  });
});
