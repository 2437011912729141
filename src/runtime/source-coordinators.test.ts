import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import type { Source, SplitEnumerator, SplitEnumeratorContext } from './io.js';
import type { ReaderEvent } from './protocol.js';
import { type CoordinatedSource, SourceCoordinators } from './source-coordinators.js';

/** What a fake enumerator does on each call; every call is recorded in `calls`. */
interface FakeBehaviour {
  start?(ctx: SplitEnumeratorContext): void | Promise<void>;
  addReader?(ctx: SplitEnumeratorContext, subtask: number): void;
  handleSourceEvent?(ctx: SplitEnumeratorContext, subtask: number, event: unknown): void;
  snapshotState?(ctx: SplitEnumeratorContext, checkpointId: number): unknown;
  close?(): void | Promise<void>;
}

interface FakeSource extends Source<unknown> {
  readonly calls: string[];
  /** The context the enumerator was created with. */
  ctx: SplitEnumeratorContext | undefined;
}

const fakeSource = (behaviour: FakeBehaviour = {}, name = 'fake'): FakeSource => {
  const calls: string[] = [];
  const source: FakeSource = {
    defaultName: name,
    calls,
    ctx: undefined,
    createReader: () => {
      throw new Error('not used');
    },
    createEnumerator: (ctx): SplitEnumerator => {
      source.ctx = ctx;
      calls.push('create');
      return {
        start: async () => {
          calls.push('start');
          await behaviour.start?.(ctx);
          calls.push('started');
        },
        addReader: (subtask) => {
          calls.push(`addReader ${subtask}`);
          behaviour.addReader?.(ctx, subtask);
        },
        handleSourceEvent: (subtask, event) => {
          calls.push(`event ${subtask} ${JSON.stringify(event)}`);
          behaviour.handleSourceEvent?.(ctx, subtask, event);
        },
        snapshotState: (checkpointId) => {
          calls.push(`snapshot ${checkpointId}`);
          return behaviour.snapshotState?.(ctx, checkpointId);
        },
        notifyCheckpointComplete: (checkpointId) => void calls.push(`complete ${checkpointId}`),
        notifyCheckpointAborted: (checkpointId) => void calls.push(`aborted ${checkpointId}`),
        close: async () => {
          calls.push('close');
          await behaviour.close?.();
        },
      };
    },
  };
  return source;
};

/** A source without an enumerator (like the generator). */
const plainSource: Source<unknown> = {
  defaultName: 'plain',
  createReader: () => {
    throw new Error('not used');
  },
};

interface Sent {
  uid: string;
  subtask: number;
  event: ReaderEvent;
}

const setup = (sources: CoordinatedSource[]) => {
  const sent: Sent[] = [];
  const coordinators = new SourceCoordinators(sources, (uid, subtask, event) =>
    sent.push({ uid, subtask, event }),
  );
  return { coordinators, sent };
};

const entry = (
  uid: string,
  source: Source<unknown>,
  parallelism: number,
  restored: { isRestored?: boolean; restoredState?: unknown } = {},
): CoordinatedSource => ({
  uid,
  source,
  parallelism,
  isRestored: restored.isRestored ?? false,
  restoredState: restored.restoredState,
});

/** Deals `splits` round robin over the readers, then signals no more splits to each. */
const dealing = (splits: string[]): FakeBehaviour => ({
  addReader: (ctx, subtask) => {
    const mine = splits.filter((_, k) => k % ctx.parallelism === subtask);
    ctx.assignSplits(subtask, mine);
    ctx.signalNoMoreSplits(subtask);
  },
});

const caught = (f: () => unknown): EddyError => {
  try {
    f();
  } catch (e) {
    return e as EddyError;
  }
  throw new Error('expected a throw');
};

describe('SourceCoordinators', () => {
  it('starts each enumerator, then adds every reader in order, and routes assignments', async () => {
    const a = fakeSource(dealing(['s0', 's1', 's2', 's3', 's4']), 'a');
    const b = fakeSource(dealing(['x']), 'b');
    const { coordinators, sent } = setup([
      entry('A', a, 3),
      entry('P', plainSource, 2),
      entry('B', b, 2),
    ]);
    expect(coordinators.uids).toEqual(['A', 'B']);
    expect(sent).toEqual([]); // nothing before start
    await coordinators.start();
    expect(a.calls).toEqual([
      'create',
      'start',
      'started',
      'addReader 0',
      'addReader 1',
      'addReader 2',
    ]);
    expect(b.calls).toEqual(['create', 'start', 'started', 'addReader 0', 'addReader 1']);
    expect(sent).toEqual([
      { uid: 'A', subtask: 0, event: { kind: 'splits', splits: ['s0', 's3'] } },
      { uid: 'A', subtask: 0, event: { kind: 'noMoreSplits' } },
      { uid: 'A', subtask: 1, event: { kind: 'splits', splits: ['s1', 's4'] } },
      { uid: 'A', subtask: 1, event: { kind: 'noMoreSplits' } },
      { uid: 'A', subtask: 2, event: { kind: 'splits', splits: ['s2'] } },
      { uid: 'A', subtask: 2, event: { kind: 'noMoreSplits' } },
      { uid: 'B', subtask: 0, event: { kind: 'splits', splits: ['x'] } },
      { uid: 'B', subtask: 0, event: { kind: 'noMoreSplits' } },
      // An empty assignment sends nothing; no more splits is sent once per reader.
      { uid: 'B', subtask: 1, event: { kind: 'noMoreSplits' } },
    ]);
    await coordinators.close();
    expect(a.calls.at(-1)).toBe('close');
    expect(b.calls.at(-1)).toBe('close');
  });

  it('gives the enumerator its parallelism and restored state', async () => {
    const fresh = fakeSource();
    const restored = fakeSource();
    const old = fakeSource();
    const { coordinators } = setup([
      entry('F', fresh, 2),
      entry('R', restored, 4, { isRestored: true, restoredState: { unassigned: ['a'] } }),
      entry('O', old, 1, { isRestored: true }), // a checkpoint from before enumerators
    ]);
    expect(fresh.ctx).toMatchObject({
      parallelism: 2,
      isRestored: false,
      restoredState: undefined,
    });
    expect(restored.ctx).toMatchObject({
      parallelism: 4,
      isRestored: true,
      restoredState: { unassigned: ['a'] },
    });
    expect(old.ctx).toMatchObject({ parallelism: 1, isRestored: true, restoredState: undefined });
    await coordinators.close();
  });

  it('snapshots every enumerator as a JSON copy, by uid, and restores from it', async () => {
    let pending = ['a', 'b', 'c'];
    const behaviour: FakeBehaviour = {
      start: (ctx) => {
        if (ctx.isRestored) pending = [...(ctx.restoredState as { pending: string[] }).pending];
      },
      snapshotState: () => ({ pending, skipped: undefined }),
    };
    const source = fakeSource(behaviour);
    const quiet = fakeSource({ snapshotState: () => undefined });
    const { coordinators } = setup([
      entry('S', source, 1),
      entry('Q', quiet, 1),
      entry('P', plainSource, 1),
    ]);
    await coordinators.start();
    const state = coordinators.snapshot(5);
    expect(state).toEqual({ S: { pending: ['a', 'b', 'c'] } }); // no entry for Q or P
    expect(Object.keys(state.S as object)).toEqual(['pending']); // as JSON stores it
    pending.push('d'); // the enumerator moves on: the snapshot does not change
    expect(state).toEqual({ S: { pending: ['a', 'b', 'c'] } });
    expect(source.calls).toContain('snapshot 5');
    coordinators.notifyCheckpointComplete(5);
    expect(source.calls.at(-1)).toBe('complete 5');
    await coordinators.close();

    pending = [];
    const again = fakeSource(behaviour);
    const restored = setup([entry('S', again, 2, { isRestored: true, restoredState: state.S })]);
    await restored.coordinators.start();
    expect(restored.coordinators.snapshot(6)).toEqual({ S: { pending: ['a', 'b', 'c'] } });
    await restored.coordinators.close();
  });

  it('refuses a state JSON cannot hold, naming the source', async () => {
    const source = fakeSource({ snapshotState: () => ({ n: 1n }) }, 'big');
    const { coordinators } = setup([entry('U1', source, 1)]);
    await coordinators.start();
    const error = caught(() => coordinators.snapshot(1));
    expect(error).toBeInstanceOf(EddyError);
    expect(error.code).toBe('EDDY_STATE');
    expect(error.message).toContain("source 'big' (uid U1)");
    await coordinators.close();
  });

  it('carries events both ways, and an enumerator assigns a split it discovers later', async () => {
    const discovered: string[] = [];
    const source = fakeSource({
      addReader: (ctx, subtask) => ctx.assignSplits(subtask, [`initial-${subtask}`]),
      handleSourceEvent: (ctx, subtask, event) => {
        const e = event as { want?: string; ping?: number };
        if (e.ping !== undefined) ctx.sendEventToReader(subtask, { pong: e.ping });
        if (e.want !== undefined) {
          // "Discovers" a new split on request, assigns it to the asking reader; the last
          // one ends the input of every reader.
          discovered.push(e.want);
          ctx.assignSplits(subtask, [e.want]);
          if (e.want === 'last') {
            for (let i = 0; i < ctx.parallelism; i++) ctx.signalNoMoreSplits(i);
          }
        }
      },
      snapshotState: () => ({ discovered }),
    });
    const { coordinators, sent } = setup([entry('E', source, 2)]);
    await coordinators.start();
    sent.length = 0;
    coordinators.handleReaderEvent('E', 1, { ping: 7 });
    coordinators.handleReaderEvent('E', 0, { want: 'late-1' });
    expect(coordinators.snapshot(1)).toEqual({ E: { discovered: ['late-1'] } });
    coordinators.handleReaderEvent('E', 1, { want: 'last' });
    expect(sent).toEqual([
      { uid: 'E', subtask: 1, event: { kind: 'custom', event: { pong: 7 } } },
      { uid: 'E', subtask: 0, event: { kind: 'splits', splits: ['late-1'] } },
      { uid: 'E', subtask: 1, event: { kind: 'splits', splits: ['last'] } },
      { uid: 'E', subtask: 0, event: { kind: 'noMoreSplits' } },
      { uid: 'E', subtask: 1, event: { kind: 'noMoreSplits' } },
    ]);
    expect(source.calls).toContain('event 0 {"want":"late-1"}');
    await coordinators.close();
  });

  it('drops events of sources without an enumerator and everything after close', async () => {
    let ctx: SplitEnumeratorContext | undefined;
    const source = fakeSource({
      start: (c) => {
        ctx = c;
      },
    });
    const { coordinators, sent } = setup([entry('E', source, 1), entry('P', plainSource, 1)]);
    await coordinators.start();
    coordinators.handleReaderEvent('P', 0, { anything: true });
    await coordinators.close();
    await coordinators.close(); // idempotent
    expect(source.calls.filter((c) => c === 'close')).toHaveLength(1);
    coordinators.handleReaderEvent('E', 0, { late: true });
    ctx!.assignSplits(0, ['late']); // e.g. from a discovery callback firing late
    ctx!.sendEventToReader(0, 'late');
    expect(sent).toEqual([]);
    expect(source.calls).not.toContain('event 0 {"late":true}');
  });

  it('names the source in every error and keeps the code of an EddyError', async () => {
    const plain = fakeSource({ start: () => Promise.reject(new Error('boom')) }, 'listing');
    const first = setup([entry('L1', plain, 1)]);
    const error = (await first.coordinators.start().catch((e: unknown) => e)) as EddyError;
    expect(error).toBeInstanceOf(EddyError);
    expect(error.code).toBe('EDDY_JOB_FAILED');
    expect(error.message).toBe("source 'listing' (uid L1), split enumerator start failed: boom");
    await first.coordinators.close(); // closes after a failed start too
    expect(plain.calls.at(-1)).toBe('close');

    const io = fakeSource(
      {
        handleSourceEvent: () => {
          throw new EddyError('EDDY_SOURCE_IO', 'cannot list', {
            domain: 'external',
            retriable: true,
          });
        },
      },
      'nats',
    );
    const second = setup([entry('N1', io, 2)]);
    await second.coordinators.start();
    const wrapped = caught(() => second.coordinators.handleReaderEvent('N1', 1, {}));
    expect(wrapped.code).toBe('EDDY_SOURCE_IO');
    expect(wrapped.domain).toBe('external');
    expect(wrapped.retriable).toBe(true);
    expect(wrapped.message).toBe(
      "source 'nats' (uid N1), split enumerator handleSourceEvent: cannot list",
    );
    await second.coordinators.close();
  });

  it('an enumerator fails the attempt from its own callback, named once; aborts reach it', async () => {
    const source = fakeSource({}, 'discovering');
    const failures: EddyError[] = [];
    const coordinators = new SourceCoordinators(
      [entry('D1', source, 2)],
      () => {},
      (e) => failures.push(e),
    );
    await coordinators.start();
    coordinators.notifyCheckpointAborted(4);
    expect(source.calls).toContain('aborted 4');
    const lost = new EddyError('EDDY_SOURCE_IO', 'connection lost', {
      domain: 'external',
      retriable: true,
    });
    source.ctx!.fail(lost);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.message).toBe(
      "source 'discovering' (uid D1), split enumerator failed: connection lost",
    );
    expect(failures[0]!.retriable).toBe(true);
    expect(failures[0]!.cause).toBe(lost);
    // An error already named passes through unchanged, whatever its text.
    source.ctx!.fail(failures[0]);
    expect(failures[1]).toBe(failures[0]);
    await coordinators.close();
    source.ctx!.fail(new Error('after close'));
    expect(failures).toHaveLength(2);
  });

  it('rejects assignments to readers that do not exist or were told no more splits', async () => {
    const outOfRange = fakeSource({ addReader: (ctx) => ctx.assignSplits(3, ['s']) }, 'bad');
    const a = setup([entry('B1', outOfRange, 2)]);
    const error = (await a.coordinators.start().catch((e: unknown) => e)) as EddyError;
    expect(error.code).toBe('EDDY_INTERNAL');
    expect(error.message).toMatch(/^source 'bad' \(uid B1\): .*subtask 3, parallelism is 2/);
    await a.coordinators.close();

    const late = fakeSource({
      addReader: (ctx, subtask) => {
        ctx.signalNoMoreSplits(subtask);
        ctx.assignSplits(subtask, ['s']);
      },
    });
    const b = setup([entry('B2', late, 1)]);
    const lateError = (await b.coordinators.start().catch((e: unknown) => e)) as EddyError;
    expect(lateError.message).toMatch(/after signalling no more splits/);
    await b.coordinators.close();
  });

  it('rejects events for an unknown source or subtask, and duplicate uids', async () => {
    const { coordinators } = setup([entry('E', fakeSource(), 2)]);
    await coordinators.start();
    expect(caught(() => coordinators.handleReaderEvent('nope', 0, {})).code).toBe('EDDY_INTERNAL');
    expect(caught(() => coordinators.handleReaderEvent('E', 2, {})).message).toMatch(
      /subtask 2, parallelism is 2/,
    );
    await coordinators.close();
    expect(
      caught(() => setup([entry('D', fakeSource(), 1), entry('D', plainSource, 1)])).message,
    ).toMatch(/listed twice/);
  });

  it('closes every enumerator even when one fails, then reports the failure', async () => {
    const failing = fakeSource({ close: () => Promise.reject(new Error('stuck')) }, 'f');
    const other = fakeSource({}, 'o');
    const { coordinators } = setup([entry('F', failing, 1), entry('O', other, 1)]);
    await coordinators.start();
    const error = (await coordinators.close().catch((e: unknown) => e)) as EddyError;
    expect(error.message).toBe("source 'f' (uid F), split enumerator close failed: stuck");
    expect(other.calls.at(-1)).toBe('close');
  });
});
