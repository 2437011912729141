import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CheckpointBarrier } from '../core/elements.js';
import { InternalError } from '../core/errors.js';
import { checkpointId } from '../core/ids.js';
import { type AlignerEvent, BarrierAligner } from './barrier-aligner.js';

/** A barrier; `timestamp` tells two barriers of the same checkpoint apart. */
const bar = (id: number, timestamp = id * 1000): CheckpointBarrier => ({
  kind: 'barrier',
  checkpointId: checkpointId(id),
  timestamp,
  savepoint: false,
});
const aligned = (barrier: CheckpointBarrier): AlignerEvent => ({ kind: 'aligned', barrier });
const declined = (id: number, reason: 'newer-barrier' | 'aborted'): AlignerEvent => ({
  kind: 'declined',
  checkpointId: id,
  reason,
});
const released = (...channels: number[]): AlignerEvent => ({ kind: 'released', channels });

const blockedOf = (a: BarrierAligner, channels: readonly number[]): number[] =>
  channels.filter((c) => a.isBlocked(c)).sort((x, y) => x - y);

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
};

describe('BarrierAligner: two channels', () => {
  it('blocks the first channel and aligns on the second, with the first barrier object', () => {
    const a = new BarrierAligner([0, 1]);
    expect(a.pending).toBeUndefined();
    const first = bar(1, 10);
    expect(a.onBarrier(0, first)).toEqual([]);
    expect(a.pending).toBe(1);
    expect(a.isBlocked(0)).toBe(true);
    expect(a.isBlocked(1)).toBe(false);
    const events = a.onBarrier(1, bar(1, 20));
    expect(events).toEqual([aligned(first), released(0)]);
    expect(events[0]).toMatchObject({ barrier: first });
    expect((events[0] as { barrier: CheckpointBarrier }).barrier).toBe(first);
    expect(a.pending).toBeUndefined();
    expect(blockedOf(a, [0, 1])).toEqual([]);
  });

  it('aligns consecutive checkpoints in either channel order', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(1, bar(1));
    expect(a.onBarrier(0, bar(1))).toEqual([aligned(bar(1)), released(1)]);
    expect(a.onBarrier(0, bar(2))).toEqual([]);
    expect(a.onBarrier(1, bar(2))).toEqual([aligned(bar(2)), released(0)]);
  });

  it('a channel that ended first counts as aligned: the barrier aligns at once, nothing blocked', () => {
    const a = new BarrierAligner([0, 1]);
    expect(a.onEndOfInput(1)).toEqual([]);
    expect(a.onBarrier(0, bar(1))).toEqual([aligned(bar(1))]);
    expect(a.isBlocked(0)).toBe(false);
    expect(a.pending).toBeUndefined();
  });

  it('end of input on the missing channel completes the alignment', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(1));
    expect(a.onEndOfInput(1)).toEqual([aligned(bar(1)), released(0)]);
    expect(a.pending).toBeUndefined();
    expect(a.isBlocked(0)).toBe(false);
  });

  it('after every channel ended nothing happens (a barrier can never arrive)', () => {
    const a = new BarrierAligner([0, 1]);
    expect(a.onEndOfInput(0)).toEqual([]);
    expect(a.onEndOfInput(1)).toEqual([]);
    expect(a.onAbort(1)).toEqual([]);
    a.markTaken(2);
    expect(a.pending).toBeUndefined();
    expect(blockedOf(a, [0, 1])).toEqual([]);
  });
});

describe('BarrierAligner: three channels', () => {
  it('waits for every channel and releases the blocked ones sorted ascending', () => {
    const a = new BarrierAligner([7, 3, 12]);
    expect(a.onBarrier(12, bar(4))).toEqual([]);
    expect(a.onBarrier(3, bar(4))).toEqual([]);
    expect(blockedOf(a, [3, 7, 12])).toEqual([3, 12]);
    expect(a.onBarrier(7, bar(4))).toEqual([aligned(bar(4)), released(3, 12)]);
  });

  it('sorts released channels numerically, not as strings', () => {
    const a = new BarrierAligner([10, 9, 2]);
    a.onBarrier(10, bar(1));
    a.onBarrier(9, bar(1));
    expect(a.onEndOfInput(2)).toEqual([aligned(bar(1)), released(9, 10)]);
  });

  it('an end that leaves a live channel missing does not complete the alignment', () => {
    const a = new BarrierAligner([0, 1, 2]);
    a.onBarrier(0, bar(1));
    expect(a.onEndOfInput(1)).toEqual([]);
    expect(a.pending).toBe(1);
    expect(blockedOf(a, [0, 1, 2])).toEqual([0]);
    expect(a.onBarrier(2, bar(1))).toEqual([aligned(bar(1)), released(0)]);
  });

  it('the end of all other channels completes the alignment', () => {
    const a = new BarrierAligner([0, 1, 2]);
    a.onBarrier(1, bar(1));
    expect(a.onEndOfInput(0)).toEqual([]);
    expect(a.onEndOfInput(2)).toEqual([aligned(bar(1)), released(1)]);
  });

  it('a newer barrier declines the pending alignment, releases it, then aligns the new one', () => {
    const a = new BarrierAligner([0, 1, 2]);
    a.onBarrier(0, bar(1));
    // Channel 1 skipped checkpoint 1: it can never align.
    const events = a.onBarrier(1, bar(2));
    expect(events).toEqual([declined(1, 'newer-barrier'), released(0)]);
    expect(a.pending).toBe(2);
    expect(blockedOf(a, [0, 1, 2])).toEqual([1]);
    // Channel 0's held frames are replayed: they hold barrier 2.
    expect(a.onBarrier(0, bar(2))).toEqual([]);
    // Channel 2 still delivers the obsolete barrier 1, then 2.
    expect(a.onBarrier(2, bar(1))).toEqual([]);
    expect(a.isBlocked(2)).toBe(false);
    expect(a.onBarrier(2, bar(2))).toEqual([aligned(bar(2)), released(0, 1)]);
  });

  it('a newer barrier after a completed alignment starts without declining anything', () => {
    const a = new BarrierAligner([0, 1, 2]);
    a.onBarrier(0, bar(1));
    a.onBarrier(1, bar(1));
    a.onBarrier(2, bar(1));
    expect(a.onBarrier(2, bar(3))).toEqual([]);
    expect(a.pending).toBe(3);
  });
});

describe('BarrierAligner: obsolete barriers', () => {
  it('ignores a barrier older than the latest checkpoint', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(2));
    expect(a.onBarrier(1, bar(1))).toEqual([]);
    expect(a.isBlocked(1)).toBe(false);
    expect(a.pending).toBe(2);
  });

  it('ignores a barrier of an already aligned checkpoint', () => {
    const a = new BarrierAligner([0]);
    expect(a.onBarrier(0, bar(1))).toEqual([aligned(bar(1))]);
    expect(a.onBarrier(0, bar(1))).toEqual([]);
    expect(a.pending).toBeUndefined();
  });

  it('ignores a barrier of an already declined checkpoint', () => {
    const a = new BarrierAligner([0, 1, 2]);
    a.onBarrier(0, bar(1));
    a.onBarrier(1, bar(2));
    a.onBarrier(0, bar(2));
    a.onBarrier(2, bar(2));
    // Nothing pending now; checkpoint 1 was declined: its barrier is obsolete.
    expect(a.onBarrier(2, bar(1))).toEqual([]);
    expect(a.pending).toBeUndefined();
  });

  it('ignores the barrier of a checkpoint aborted before it arrived', () => {
    const a = new BarrierAligner([0, 1]);
    expect(a.onAbort(1)).toEqual([]);
    expect(a.onBarrier(0, bar(1))).toEqual([]);
    expect(a.isBlocked(0)).toBe(false);
    expect(a.pending).toBeUndefined();
    expect(a.onBarrier(0, bar(2))).toEqual([]);
    expect(a.pending).toBe(2);
  });

  it('ignores barriers up to a checkpoint marked taken', () => {
    const a = new BarrierAligner([0, 1]);
    a.markTaken(3);
    expect(a.onBarrier(0, bar(2))).toEqual([]);
    expect(a.onBarrier(0, bar(3))).toEqual([]);
    expect(a.pending).toBeUndefined();
    expect(a.onBarrier(0, bar(4))).toEqual([]);
    expect(a.pending).toBe(4);
  });
});

describe('BarrierAligner: aborts', () => {
  it('aborting the pending checkpoint declines it and releases; its later barriers are ignored', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(1));
    expect(a.onAbort(1)).toEqual([declined(1, 'aborted'), released(0)]);
    expect(a.pending).toBeUndefined();
    expect(blockedOf(a, [0, 1])).toEqual([]);
    expect(a.onBarrier(1, bar(1))).toEqual([]);
    expect(a.isBlocked(1)).toBe(false);
    // The next checkpoint aligns normally.
    a.onBarrier(0, bar(2));
    expect(a.onBarrier(1, bar(2))).toEqual([aligned(bar(2)), released(0)]);
  });

  it('aborting a newer checkpoint also declines the pending older one', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(1, bar(1));
    expect(a.onAbort(2)).toEqual([declined(1, 'aborted'), released(1)]);
    expect(a.onBarrier(0, bar(2))).toEqual([]);
    expect(a.pending).toBeUndefined();
    expect(a.onBarrier(0, bar(3))).toEqual([]);
    expect(a.pending).toBe(3);
  });

  it('aborting an older checkpoint while a newer one is pending changes nothing', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(2));
    expect(a.onAbort(1)).toEqual([]);
    expect(a.pending).toBe(2);
    expect(a.isBlocked(0)).toBe(true);
    expect(a.onBarrier(1, bar(2))).toEqual([aligned(bar(2)), released(0)]);
  });

  it('aborting an old or unknown checkpoint with nothing pending emits nothing', () => {
    const a = new BarrierAligner([0]);
    a.onBarrier(0, bar(3));
    expect(a.onAbort(3)).toEqual([]);
    expect(a.onAbort(1)).toEqual([]);
    expect(a.onAbort(3)).toEqual([]);
    expect(a.pending).toBeUndefined();
    expect(a.onBarrier(0, bar(4))).toEqual([aligned(bar(4))]);
  });
});

describe('BarrierAligner: single channel', () => {
  it('aligns each barrier at once and never blocks', () => {
    const a = new BarrierAligner([5]);
    expect(a.onBarrier(5, bar(1))).toEqual([aligned(bar(1))]);
    expect(a.isBlocked(5)).toBe(false);
    expect(a.pending).toBeUndefined();
    expect(a.onBarrier(5, bar(3))).toEqual([aligned(bar(3))]);
    expect(a.onBarrier(5, bar(2))).toEqual([]);
    expect(a.onEndOfInput(5)).toEqual([]);
  });
});

describe('BarrierAligner: markTaken', () => {
  it('is allowed below a pending alignment and does not disturb it', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(3));
    a.markTaken(2);
    expect(a.pending).toBe(3);
    expect(a.onBarrier(1, bar(3))).toEqual([aligned(bar(3)), released(0)]);
  });

  it('throws when it covers the pending alignment, leaving it unchanged', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(3));
    expect(thrown(() => a.markTaken(3))).toBeInstanceOf(InternalError);
    expect(thrown(() => a.markTaken(4))).toBeInstanceOf(InternalError);
    expect(a.pending).toBe(3);
    expect(a.onBarrier(1, bar(3))).toEqual([aligned(bar(3)), released(0)]);
  });
});

describe('BarrierAligner: programming errors throw InternalError and change nothing', () => {
  const expectInternal = (f: () => unknown, message: RegExp) => {
    const e = thrown(f);
    expect(e).toBeInstanceOf(InternalError);
    expect((e as InternalError).code).toBe('EDDY_INTERNAL');
    expect((e as Error).message).toMatch(message);
  };

  it('rejects duplicate channel ids', () => {
    expectInternal(() => new BarrierAligner([1, 2, 1]), /duplicate input channel ids/);
  });

  it('rejects unknown channels everywhere', () => {
    const a = new BarrierAligner([0, 1]);
    expectInternal(() => a.isBlocked(2), /unknown input channel 2/);
    expectInternal(() => a.onBarrier(2, bar(1)), /unknown input channel 2/);
    expectInternal(() => a.onEndOfInput(-1), /unknown input channel -1/);
    expect(a.pending).toBeUndefined();
  });

  it('rejects a second end of input on the same channel', () => {
    const a = new BarrierAligner([0, 1]);
    a.onEndOfInput(0);
    expectInternal(() => a.onEndOfInput(0), /after its end of input/);
  });

  it('rejects end of input on a blocked channel', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(1));
    expectInternal(() => a.onEndOfInput(0), /blocked/);
    expect(a.pending).toBe(1);
    expect(a.isBlocked(0)).toBe(true);
    expect(a.onBarrier(1, bar(1))).toEqual([aligned(bar(1)), released(0)]);
  });

  it('rejects any barrier on a blocked channel, even an obsolete or newer one', () => {
    const a = new BarrierAligner([0, 1]);
    a.onBarrier(0, bar(2));
    expectInternal(() => a.onBarrier(0, bar(2)), /blocked/);
    expectInternal(() => a.onBarrier(0, bar(1)), /blocked/);
    expectInternal(() => a.onBarrier(0, bar(3)), /blocked/);
    expect(a.pending).toBe(2);
    expect(blockedOf(a, [0, 1])).toEqual([0]);
  });

  it('rejects a barrier after the channel ended', () => {
    const a = new BarrierAligner([0, 1]);
    a.onEndOfInput(1);
    expectInternal(() => a.onBarrier(1, bar(1)), /after its end of input/);
    expect(a.pending).toBeUndefined();
  });

  it('rejects checkpoint ids that are not safe integers', () => {
    const a = new BarrierAligner([0, 1]);
    expectInternal(() => a.onBarrier(0, bar(Number.NaN)), /invalid checkpoint id/);
    expectInternal(() => a.onAbort(1.5), /invalid checkpoint id/);
    expectInternal(() => a.markTaken(Number.POSITIVE_INFINITY), /invalid checkpoint id/);
    expect(a.pending).toBeUndefined();
    expect(a.isBlocked(0)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Property test: the aligner against a tiny reference model, plus model-free invariants.

type Op =
  /** `ch` indexes the channel list (modulo its length); -1 is a channel that does not exist. */
  | { readonly k: 'barrier'; readonly ch: number; readonly id: number }
  | { readonly k: 'end'; readonly ch: number }
  | { readonly k: 'abort'; readonly id: number }
  | { readonly k: 'taken'; readonly id: number };

/**
 * The reference model states the rules differently from the implementation: instead of a
 * blocked set it remembers the last accepted barrier of every channel; a channel is blocked iff
 * that is the pending checkpoint, and `released` is whatever stopped being blocked.
 */
interface Model {
  readonly channels: readonly number[];
  readonly latest: number;
  readonly pending: CheckpointBarrier | undefined;
  readonly delivered: ReadonlyMap<number, number>;
  readonly ended: ReadonlySet<number>;
}

const modelBlocked = (m: Model): number[] =>
  m.channels
    .filter((c) => m.pending !== undefined && m.delivered.get(c) === m.pending.checkpointId)
    .sort((x, y) => x - y);

/** Completes the alignment if every live channel delivered it; reports what got unblocked. */
const settle = (before: Model, next: Model, events: AlignerEvent[]) => {
  const p = next.pending;
  if (p !== undefined) {
    const done = next.channels.every(
      (c) => next.ended.has(c) || next.delivered.get(c) === p.checkpointId,
    );
    if (done) {
      events.push(aligned(p));
      next = { ...next, pending: undefined };
    }
  }
  const after = modelBlocked(next);
  const freed = modelBlocked(before).filter((c) => !after.includes(c));
  // Right after the declined or aligned event that caused it.
  if (freed.length > 0) events.splice(1, 0, released(...freed));
  return { model: next, events };
};

const modelStep = (
  m: Model,
  op: Op,
  channel: number,
  barrier: CheckpointBarrier,
): { model: Model; events: AlignerEvent[] } | 'error' => {
  const undeliverable = () =>
    !m.channels.includes(channel) || m.ended.has(channel) || modelBlocked(m).includes(channel);
  switch (op.k) {
    case 'barrier': {
      if (undeliverable()) return 'error';
      const id = barrier.checkpointId;
      if (id < m.latest || (id === m.latest && m.pending?.checkpointId !== id)) {
        return { model: m, events: [] };
      }
      const events: AlignerEvent[] = [];
      let next = m;
      if (id > m.latest) {
        if (m.pending !== undefined) events.push(declined(m.pending.checkpointId, 'newer-barrier'));
        next = { ...m, latest: id, pending: barrier };
      }
      next = { ...next, delivered: new Map(next.delivered).set(channel, id) };
      return settle(m, next, events);
    }
    case 'end':
      if (undeliverable()) return 'error';
      return settle(m, { ...m, ended: new Set(m.ended).add(channel) }, []);
    case 'abort': {
      const next = { ...m, latest: Math.max(m.latest, op.id) };
      if (m.pending === undefined || m.pending.checkpointId > op.id) return settle(m, next, []);
      const events = [declined(m.pending.checkpointId, 'aborted')];
      return settle(m, { ...next, pending: undefined }, events);
    }
    case 'taken':
      if (m.pending !== undefined && m.pending.checkpointId <= op.id) return 'error';
      return { model: { ...m, latest: Math.max(m.latest, op.id) }, events: [] };
  }
};

const UNKNOWN_CHANNEL = 99;

const apply = (a: BarrierAligner, op: Op, channel: number, barrier: CheckpointBarrier) => {
  switch (op.k) {
    case 'barrier':
      return a.onBarrier(channel, barrier);
    case 'end':
      return a.onEndOfInput(channel);
    case 'abort':
      return a.onAbort(op.id);
    case 'taken':
      a.markTaken(op.id);
      return [];
  }
};

const attempt = (f: () => AlignerEvent[]): AlignerEvent[] | { error: unknown } => {
  try {
    return f();
  } catch (error) {
    return { error };
  }
};

/** How often each outcome occurred over all runs, to show the generator reaches them. */
const seen = { aligned: 0, newer: 0, aborted: 0, released: 0, error: 0, obsolete: 0 };

/** Model-free checks of one successful step. */
const checkStep = (
  events: AlignerEvent[],
  op: Op,
  channel: number,
  before: { pending: number | undefined; blocked: number[] },
  after: { pending: number | undefined; blocked: number[]; live: number[] },
) => {
  // One alignment at a time: decisions only concern the one pending before or the one started.
  const concerned = [before.pending, op.k === 'barrier' ? op.id : undefined];
  const decided = events.filter((e) => e.kind !== 'released');
  for (const e of decided) {
    const id = e.kind === 'aligned' ? e.barrier.checkpointId : e.checkpointId;
    expect(concerned).toContain(id);
    if (e.kind === 'declined') expect(id).toBe(before.pending);
  }
  expect(events.filter((e) => e.kind === 'aligned').length).toBeLessThanOrEqual(1);
  expect(events.filter((e) => e.kind === 'declined').length).toBeLessThanOrEqual(1);
  // `released` lists exactly the channels that stopped being blocked, sorted, after its cause.
  const freed: number[] = [];
  events.forEach((e, i) => {
    if (e.kind !== 'released') return;
    expect(e.channels.length).toBeGreaterThan(0);
    expect(e.channels).toEqual([...new Set(e.channels)].sort((x, y) => x - y));
    expect(['aligned', 'declined']).toContain(events[i - 1]?.kind);
    freed.push(...e.channels);
  });
  expect(freed.sort((x, y) => x - y)).toEqual(
    before.blocked.filter((c) => !after.blocked.includes(c)),
  );
  // Only the channel that delivered a barrier can become blocked.
  const newlyBlocked = after.blocked.filter((c) => !before.blocked.includes(c));
  expect(newlyBlocked).toEqual(op.k === 'barrier' && newlyBlocked.length > 0 ? [channel] : []);
  // Nothing blocked without a pending alignment; a pending one is waiting for a live channel.
  if (after.pending === undefined) expect(after.blocked).toEqual([]);
  else {
    expect(after.blocked.length).toBeGreaterThan(0);
    expect(after.live.some((c) => !after.blocked.includes(c))).toBe(true);
  }
  for (const c of after.blocked) expect(after.live).toContain(c);
};

const tally = (events: AlignerEvent[], op: Op) => {
  for (const e of events) {
    if (e.kind === 'aligned') seen.aligned++;
    else if (e.kind === 'released') seen.released++;
    else if (e.reason === 'newer-barrier') seen.newer++;
    else seen.aborted++;
  }
  if (op.k === 'barrier' && events.length === 0) seen.obsolete++;
};

const run = (channels: readonly number[], ops: readonly Op[]) => {
  const a = new BarrierAligner(channels);
  let m: Model = {
    channels,
    latest: 0,
    pending: undefined,
    delivered: new Map(),
    ended: new Set(),
  };
  const ended = new Set<number>();
  const snapshot = () => ({
    pending: a.pending,
    blocked: blockedOf(a, channels),
    live: channels.filter((c) => !ended.has(c)),
  });
  let lastAligned = Number.NEGATIVE_INFINITY;
  /** Channels seen blocked and not yet named by a `released` event. */
  const outstanding = new Set<number>();
  ops.forEach((op, i) => {
    const channel =
      'ch' in op ? (op.ch < 0 ? UNKNOWN_CHANNEL : channels[op.ch % channels.length]!) : -1;
    const barrier = bar('id' in op ? op.id : 0, i);
    const before = snapshot();
    const expected = modelStep(m, op, channel, barrier);
    const result = attempt(() => apply(a, op, channel, barrier));
    if (expected === 'error' || 'error' in result) {
      // Both refuse, with an InternalError, and the refusal changes nothing.
      expect(expected).toBe('error');
      expect('error' in result && result.error).toBeInstanceOf(InternalError);
      expect(snapshot()).toEqual(before);
      seen.error++;
      return;
    }
    expect(result).toEqual(expected.events);
    m = expected.model;
    if (op.k === 'end') ended.add(channel);
    const after = snapshot();
    expect(after.pending).toBe(m.pending?.checkpointId);
    expect(after.blocked).toEqual(modelBlocked(m));
    checkStep(result, op, channel, before, after);
    for (const e of result) {
      if (e.kind === 'aligned') {
        // At most once per id, and in increasing id order.
        expect(e.barrier.checkpointId).toBeGreaterThan(lastAligned);
        lastAligned = e.barrier.checkpointId;
      }
      if (e.kind === 'released') for (const c of e.channels) outstanding.delete(c);
    }
    for (const c of after.blocked) outstanding.add(c);
    tally(result, op);
  });
  // Every channel ever blocked was released, or is still blocked by the pending alignment.
  const final = snapshot();
  expect([...outstanding].sort((x, y) => x - y)).toEqual(final.blocked);
  if (final.blocked.length > 0) expect(final.pending).toBeDefined();
};

const idArb = fc.integer({ min: 1, max: 5 });
const chArb = fc.oneof(
  { arbitrary: fc.nat({ max: 3 }), weight: 30 },
  { arbitrary: fc.constant(-1), weight: 1 },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ k: fc.constant('barrier' as const), ch: chArb, id: idArb }),
    weight: 12,
  },
  { arbitrary: fc.record({ k: fc.constant('end' as const), ch: chArb }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('abort' as const), id: idArb }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('taken' as const), id: idArb }), weight: 1 },
);
/** 1-4 distinct channel ids, up to 20 so that numeric and string order differ. */
const channelsArb = fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 4 });

describe('BarrierAligner: property', () => {
  it('matches the reference model and keeps its invariants over random operation sequences', () => {
    fc.assert(
      fc.property(channelsArb, fc.array(opArb, { maxLength: 40 }), (channels, ops) => {
        run(channels, ops);
      }),
      { numRuns: 1000 },
    );
    // The generator reaches every outcome, so the property is not vacuous.
    for (const [outcome, n] of Object.entries(seen)) {
      expect(n, outcome).toBeGreaterThan(20);
    }
  });

  it('reproduces a regression: newer barrier, replay, abort of the older id', () => {
    run(
      [10, 2, 9],
      [
        { k: 'barrier', ch: 0, id: 1 },
        { k: 'barrier', ch: 1, id: 2 },
        { k: 'barrier', ch: 0, id: 2 },
        { k: 'abort', id: 1 },
        { k: 'barrier', ch: 2, id: 1 },
        { k: 'end', ch: 2 },
        { k: 'barrier', ch: 1, id: 3 },
      ],
    );
  });
});
