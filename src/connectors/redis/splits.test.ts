import { describe, expect, it } from 'vitest';
import { EddyError } from '../../core/errors.js';
import type { SplitEnumeratorContext } from '../../runtime/io.js';
import { checkSplit, RedisSplitEnumerator, type RedisStreamSplitState } from './splits.js';

/** A context recording assignments; unbounded options, so no server is contacted. */
const fakeContext = (parallelism: number, restoredState?: unknown) => {
  const assigned = new Map<number, RedisStreamSplitState[]>();
  const noMore: number[] = [];
  const ctx: SplitEnumeratorContext = {
    parallelism,
    restoredState,
    isRestored: restoredState !== undefined,
    assignSplits: (subtask, splits) =>
      assigned.set(subtask, [
        ...(assigned.get(subtask) ?? []),
        ...(splits as RedisStreamSplitState[]),
      ]),
    signalNoMoreSplits: (subtask) => void noMore.push(subtask),
    sendEventToReader: () => {},
    fail: (e) => {
      throw e;
    },
  };
  return { ctx, assigned, noMore };
};

const options = { url: 'redis://127.0.0.1:1', streams: ['a', 'b', 'c', 'd', 'e'] };

describe('RedisSplitEnumerator', () => {
  it('deals stream i to reader i % p, from the start, each split knowing the total', async () => {
    const { ctx, assigned, noMore } = fakeContext(2);
    const e = new RedisSplitEnumerator(ctx, options);
    await e.start();
    e.addReader(1);
    expect(e.snapshotState(1)).toEqual({
      unassigned: [
        { stream: 'a', position: '0-0', finished: false, of: 5 },
        { stream: 'c', position: '0-0', finished: false, of: 5 },
        { stream: 'e', position: '0-0', finished: false, of: 5 },
      ],
    });
    e.addReader(0);
    e.addReader(1); // a second registration assigns nothing again
    expect(assigned.get(0)!.map((s) => s.stream)).toEqual(['a', 'c', 'e']);
    expect(assigned.get(1)!.map((s) => s.stream)).toEqual(['b', 'd']);
    expect(noMore).toEqual([1, 0, 1]);
    expect(e.snapshotState(2)).toEqual({ unassigned: [] });
  });

  it('restored, deals only the splits its state lists as unassigned, at the new parallelism', async () => {
    const unassigned = [
      { stream: 'a', position: '0-0', finished: false, of: 5 },
      { stream: 'c', position: '0-0', end: '7-0', finished: false, of: 5 },
      { stream: 'e', position: '0-0', finished: false, of: 5 },
    ];
    const { ctx, assigned } = fakeContext(3, { unassigned });
    const e = new RedisSplitEnumerator(ctx, options);
    await e.start();
    for (const r of [0, 1, 2]) e.addReader(r);
    expect(assigned.get(0)).toEqual([unassigned[0]]);
    expect(assigned.get(1)).toEqual([unassigned[1]]); // the bound is kept
    expect(assigned.get(2)).toEqual([unassigned[2]]);
  });

  it('rejects malformed state', async () => {
    const { ctx } = fakeContext(1, { unassigned: [{ stream: 'a', position: '$' }] });
    await expect(new RedisSplitEnumerator(ctx, options).start()).rejects.toThrow(EddyError);
    expect(() => checkSplit({ stream: 'a', position: '1-0', finished: false, of: 0 }, 'x')).toThrow(
      /x is not a stream position/,
    );
    expect(
      checkSplit({ stream: 'a', position: '1-0', end: '2-0', finished: true, of: 1 }, 'x'),
    ).toEqual({
      stream: 'a',
      position: '1-0',
      end: '2-0',
      finished: true,
      of: 1,
    });
  });
});
