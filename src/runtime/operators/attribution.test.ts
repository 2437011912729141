/**
 * Errors in a chain are attributed to the operator that failed, by the `subtask` they carry
 * (never by their text): ChainedOutput attributes what the next operator throws, the sink
 * attributes its writer's errors, and user-code wrappers pass attributed errors through.
 */
import { describe, expect, it } from 'vitest';
import {
  EddyError,
  FatalError,
  JobFailedError,
  type SubtaskRef,
  UserFunctionError,
} from '../../core/errors.js';
import { HeapOperatorStateStore } from '../../state/operator-state.js';
import type { Sink, SinkWriter } from '../io.js';
import { SubtaskMetrics } from '../metrics.js';
import type { OperatorContext, Output, StreamOperator } from '../operator.js';
import { ChainedOutput } from '../output.js';
import { wallClock } from '../time.js';
import { userFailure } from './base.js';
import { ProcessOperator } from './process.js';
import { SinkOperator } from './sink.js';
import { FlatMapOperator, MapOperator } from './stateless.js';

const ref = (name: string): SubtaskRef => ({
  operatorName: name,
  operatorUid: `${name}-uid`,
  subtaskIndex: 0,
  parallelism: 1,
});

const context = (subtask: SubtaskRef): OperatorContext => ({
  subtask,
  maxParallelism: 128,
  operatorState: new HeapOperatorStateStore(),
  keyedState: undefined,
  isRestored: false,
  metrics: new SubtaskMetrics(),
  stopSignal: new AbortController().signal,
  checkpointing: false,
  jobName: 'test-job',
  clock: wallClock,
  runInMailbox: (action) => action(),
});

const DISCARD: Output<unknown> = { collect() {}, emitWatermark() {}, collectSide() {} };

/** Opens `ops` as one chain (tail first, as SubtaskRunner does); returns the head's input. */
const chain = async (
  ...ops: Array<[name: string, op: StreamOperator<unknown, unknown>]>
): Promise<ChainedOutput<unknown>> => {
  let output: Output<unknown> = DISCARD;
  for (let i = ops.length - 1; i >= 0; i--) {
    const [name, op] = ops[i]!;
    await op.open(context(ref(name)), output);
    output = new ChainedOutput(op, { recordsIn: 0 }, ref(name));
  }
  return output as ChainedOutput<unknown>;
};

/** A sink whose writer fails as told. */
const failingSink = (
  fail: Partial<Record<'write' | 'flush' | 'finish', unknown>>,
): Sink<unknown> => ({
  defaultName: 'failing',
  createWriter: (): SinkWriter<unknown> => ({
    open: async () => {},
    write() {
      if (fail.write !== undefined) throw fail.write;
    },
    flush: async () => {
      if (fail.flush !== undefined) throw fail.flush;
    },
    finish: async () => {
      if (fail.finish !== undefined) throw fail.finish;
    },
    abort: async () => {},
  }),
});

const sinkIo = () =>
  new EddyError('EDDY_SINK_IO', 'cannot write part-0: ENOSPC', {
    domain: 'external',
    retriable: true,
  });

const thrown = (f: () => unknown): EddyError => {
  try {
    f();
  } catch (e) {
    return e as EddyError;
  }
  throw new Error('nothing thrown');
};

const rejected = async (p: unknown): Promise<EddyError> => {
  try {
    await p;
  } catch (e) {
    return e as EddyError;
  }
  throw new Error('nothing thrown');
};

describe('attribution in a chain', () => {
  it("a sink writer's I/O error after a map names the sink, keeping its code", async () => {
    const io = sinkIo();
    const head = await chain(
      ['enrich', new MapOperator((x: unknown) => x)],
      ['out', new SinkOperator(failingSink({ write: io }))],
    );
    const e = thrown(() => head.collect(1));
    expect(e).not.toBeInstanceOf(UserFunctionError);
    expect(e.code).toBe('EDDY_SINK_IO');
    expect(e.retriable).toBe(true);
    expect(e.subtask).toEqual(ref('out'));
    expect(e.cause).toBe(io);
    expect(e.message).toBe(
      "operator 'out' (uid out-uid), subtask 1/1: cannot write part-0: ENOSPC",
    );
  });

  it.each([
    [
      'process',
      () =>
        new ProcessOperator<unknown, unknown>({ processElement: (v, _ctx, out) => out.collect(v) }),
    ],
    ['flatMap', () => new FlatMapOperator<unknown, unknown>((v, out) => out.collect(v))],
  ])(
    'a sink error emitted from inside a user %s function names the sink, not the function',
    async (_, make) => {
      const head = await chain(
        ['user-fn', make()],
        ['out', new SinkOperator(failingSink({ write: sinkIo() }))],
      );
      const e = thrown(() => head.collect(1));
      expect(e.code).toBe('EDDY_SINK_IO');
      expect(e.subtask).toEqual(ref('out'));
      expect(e.message).not.toContain('user-fn');
    },
  );

  it("a user's map failing after a flatMap is that map's failure", async () => {
    const head = await chain(
      ['split', new FlatMapOperator<unknown, unknown>((v, out) => out.collect(v))],
      [
        'explode',
        new MapOperator((v: unknown) => {
          if (v === 2) throw new Error('boom');
          return v;
        }),
      ],
      ['out', new SinkOperator(failingSink({}))],
    );
    head.collect(1);
    const e = thrown(() => head.collect(2));
    expect(e).toBeInstanceOf(UserFunctionError);
    expect(e.subtask).toEqual(ref('explode'));
    expect(e.message).toBe(
      "operator 'explode' (uid explode-uid), subtask 1/1 failed in map at record #2: boom",
    );
  });

  it('a plain error from an operator itself names that operator as EDDY_JOB_FAILED', async () => {
    const broken: StreamOperator<unknown, unknown> = {
      open() {},
      processRecord() {
        throw new TypeError('bug in the operator');
      },
      processWatermark() {
        throw new TypeError('bug on watermark');
      },
    };
    const head = await chain(['enrich', new MapOperator((x: unknown) => x)], ['broken', broken]);
    const e = thrown(() => head.collect(1));
    expect(e).toBeInstanceOf(JobFailedError);
    expect(e.subtask).toEqual(ref('broken'));
    expect(e.message).toBe("operator 'broken' (uid broken-uid), subtask 1/1: bug in the operator");
    const w = thrown(() => head.emitWatermark(10));
    expect(w.subtask).toEqual(ref('broken'));
    expect(w.message).toContain('bug on watermark');
  });

  it('a FatalError thrown by user code becomes a non-retriable EDDY_USER_FUNCTION of that operator', async () => {
    const fatal = new FatalError('config missing');
    const head = await chain(
      [
        'strict',
        new MapOperator(() => {
          throw fatal;
        }),
      ],
      ['out', new SinkOperator(failingSink({}))],
    );
    const e = thrown(() => head.collect(1));
    expect(e).toBeInstanceOf(UserFunctionError);
    expect(e.subtask).toEqual(ref('strict'));
    expect(e.retriable).toBe(false);
    expect(e.cause).toBe(fatal);
  });

  it('a flush or finish failure names the sink', async () => {
    const flushing = new SinkOperator(failingSink({ flush: sinkIo() }));
    await flushing.open(context(ref('out')));
    const f = await rejected(flushing.endOfBatch());
    expect(f.code).toBe('EDDY_SINK_IO');
    expect(f.subtask).toEqual(ref('out'));

    const finishing = new SinkOperator(failingSink({ finish: new Error('disk gone') }));
    await finishing.open(context(ref('out')));
    const g = await rejected(finishing.finish());
    expect(g).toBeInstanceOf(JobFailedError);
    expect(g.subtask).toEqual(ref('out'));
    expect(g.message).toBe("operator 'out' (uid out-uid), subtask 1/1: disk gone");
  });

  it("a user sink writer's plain error is a user failure at the record", async () => {
    const sink = new SinkOperator(failingSink({ write: new Error('rejected') }));
    await sink.open(context(ref('out')));
    const e = thrown(() => sink.processRecord(1));
    expect(e).toBeInstanceOf(UserFunctionError);
    expect(e.message).toBe(
      "operator 'out' (uid out-uid), subtask 1/1 failed in sink write at record #1: rejected",
    );
  });
});

describe('userFailure', () => {
  it('passes through any error already attributed', () => {
    const attributed = new EddyError('EDDY_SINK_IO', 'x', { subtask: ref('out') });
    expect(userFailure(ref('fn'), 'map', 1, attributed)).toBe(attributed);
    const user = new UserFunctionError(ref('next'), 'map', 3, new Error('x'));
    expect(userFailure(ref('fn'), 'map', 1, user)).toBe(user);
  });

  it('wraps unattributed errors, EddyErrors included, as this operator’s user failure', () => {
    const own = new FatalError('stop');
    const e = userFailure(ref('fn'), 'map', 4, own);
    expect(e).toBeInstanceOf(UserFunctionError);
    expect(e.cause).toBe(own);
    expect(e.subtask).toEqual(ref('fn'));
    // Text that merely looks like an attribution is not one.
    const lookalike = new EddyError('EDDY_STATE', "operator 'x' (uid fn-uid), subtask 1/1: y");
    expect(userFailure(ref('fn'), 'map', 1, lookalike)).toBeInstanceOf(UserFunctionError);
  });
});
