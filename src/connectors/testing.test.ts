import { describe, expect, it } from 'vitest';
import type {
  ConnectorContext,
  PollResult,
  Source,
  SourceReader,
  SplitEnumerator,
} from '../runtime/io.js';
import { createTestContext, drainSource, openSourceReader, pollBatches } from './testing.js';

/**
 * A pull-based source: a reader with nothing to read asks its enumerator for a split (once
 * per request) and polls 'idle' until the answer arrives; the enumerator hands out `total`
 * numbered splits, first come first served, then no more.
 */
const requestingSource = (total: number): Source<number> => ({
  defaultName: 'requesting',
  createReader: (ctx: ConnectorContext): SourceReader<number> => {
    const splits: number[] = [];
    let asked = false;
    let done = false;
    return {
      open: async () => {},
      addSplits: (s) => {
        splits.push(...(s as number[]));
        asked = false;
      },
      notifyNoMoreSplits: () => {
        done = true;
      },
      handleSourceEvent: () => {},
      poll: async (emit): Promise<PollResult> => {
        const next = splits.shift();
        if (next !== undefined) {
          emit(next);
          return 'more';
        }
        if (done) return 'end';
        if (!asked) {
          asked = true;
          ctx.sendSourceEvent({ request: ctx.subtask.subtaskIndex });
        }
        return 'idle';
      },
      snapshotState: () => {},
      close: async () => {},
    };
  },
  createEnumerator: (ctx): SplitEnumerator => {
    let handedOut = 0;
    return {
      start: () => {},
      addReader: () => {},
      handleSourceEvent: (subtask) => {
        if (handedOut < total) ctx.assignSplits(subtask, [handedOut++]);
        else ctx.signalNoMoreSplits(subtask);
      },
      snapshotState: () => ({ handedOut }),
      close: () => {},
    };
  },
});

describe('connector test drivers', () => {
  it('run the enumerator beside the reader: events both ways, idle polls woken by answers', async () => {
    const ctx = createTestContext();
    const reader = await openSourceReader(requestingSource(3), ctx);
    const batches = await pollBatches(reader);
    await reader.close();
    expect(batches.map((b) => b.result)).toEqual([
      'idle',
      'more',
      'idle',
      'more',
      'idle',
      'more',
      'idle',
      'end',
    ]);
    expect(batches.flatMap((b) => b.records)).toEqual([0, 1, 2]);
    expect(ctx.sentSourceEvents).toHaveLength(4);
    expect(reader.received.map((e) => e.kind)).toEqual([
      'splits',
      'splits',
      'splits',
      'noMoreSplits',
    ]);
    expect(ctx.wakeups()).toBe(4); // every event from the enumerator woke the reader
  });

  it('drainSource runs a source with an enumerator to its end', async () => {
    expect(await drainSource(requestingSource(5), createTestContext())).toEqual([0, 1, 2, 3, 4]);
  });

  it('fail a reader that idles with nothing left to wake it, instead of hanging', async () => {
    const stuck: Source<number> = {
      defaultName: 'stuck',
      createReader: () => ({
        open: async () => {},
        poll: async () => 'idle',
        snapshotState: () => {},
        close: async () => {},
      }),
    };
    const reader = await openSourceReader(stuck, createTestContext());
    await expect(pollBatches(reader, 10, 3)).resolves.toHaveLength(3); // maxPolls counts idle
    await expect(drainSource(stuck, createTestContext())).rejects.toThrow(/idle/);
  }, 10_000);
});
