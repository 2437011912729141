/**
 * In-memory source and sink for tests of the runtime itself. The source deals `items`
 * round-robin over its subtasks; the sink collects into a shared array (only meaningful when
 * the job runs in one thread).
 */
import type {
  ConnectorContext,
  PollResult,
  Sink,
  SinkWriter,
  Source,
  SourceReader,
} from '../io.js';

export const memorySource = <T>(items: readonly T[], opts: { batch?: number } = {}): Source<T> => ({
  defaultName: 'memory-source',
  createReader(ctx: ConnectorContext): SourceReader<T> {
    const mine = items.filter((_, i) => i % ctx.subtask.parallelism === ctx.subtask.subtaskIndex);
    let next = 0;
    return {
      async open() {},
      async poll(emit, max): Promise<PollResult> {
        const n = Math.min(max, opts.batch ?? max);
        const end = Math.min(mine.length, next + n);
        while (next < end) emit(mine[next++]!);
        await Promise.resolve();
        return next >= mine.length || ctx.stopSignal.aborted ? 'end' : 'more';
      },
      snapshotState() {},
      async close() {},
    };
  },
});

export const memorySink = <T>(into: T[]): Sink<T> => ({
  defaultName: 'memory-sink',
  createWriter(): SinkWriter<T> {
    return {
      async open() {},
      write(r) {
        into.push(r);
      },
      flush() {},
      async finish() {},
      async abort() {},
    };
  },
});
