import { describe, expect, it } from 'vitest';
import {
  attributeTo,
  BadRecordError,
  defaultRetriable,
  describeSubtask,
  deserializeError,
  EddyError,
  type ErrorCode,
  FatalError,
  InternalError,
  InvalidArgumentError,
  JobFailedError,
  MAX_CAUSE_DEPTH,
  previewRecord,
  type SerializedError,
  type SubtaskRef,
  serializeError,
  UnhashableKeyError,
  UserFunctionError,
} from './errors.js';

const MAP: SubtaskRef = {
  operatorName: 'enrich',
  operatorUid: 'enrich',
  subtaskIndex: 1,
  parallelism: 4,
};
const SINK: SubtaskRef = {
  operatorName: 'out',
  operatorUid: 'out-uid',
  subtaskIndex: 0,
  parallelism: 2,
};

/** Serializes, copies as postMessage would, and rebuilds. */
const roundTrip = (e: unknown): EddyError => deserializeError(structuredClone(serializeError(e)));

describe('defaultRetriable', () => {
  const retriable: ErrorCode[] = [
    'EDDY_SOURCE_IO',
    'EDDY_SINK_IO',
    'EDDY_CHECKPOINT_IO',
    'EDDY_WORKER_CRASHED',
    'EDDY_CHECKPOINT_FAILED',
    'EDDY_TIMEOUT',
    'EDDY_INTERNAL',
  ];
  const final: ErrorCode[] = [
    'EDDY_BAD_RECORD',
    'EDDY_NONDETERMINISTIC_JOB',
    'EDDY_INVALID_JOB',
    'EDDY_INVALID_ARGUMENT',
    'EDDY_INVALID_PARALLELISM',
    'EDDY_JOB_MODULE',
    'EDDY_UNHASHABLE_KEY',
    'EDDY_CHECKPOINT_INCOMPATIBLE',
    'EDDY_CHECKPOINT_CORRUPT',
    'EDDY_STATE',
    'EDDY_WIRE_FORMAT',
    'EDDY_JOB_CONTROL',
    'EDDY_CLUSTER',
    'EDDY_NO_SLOTS',
    'EDDY_SLOTS_CHANGED',
    'EDDY_FATAL',
  ];

  it.each(retriable)('%s is retriable', (code) => {
    expect(defaultRetriable(code)).toBe(true);
    expect(new EddyError(code, 'x').retriable).toBe(true);
  });

  it.each(final)('%s is not retriable', (code) => {
    expect(defaultRetriable(code)).toBe(false);
    expect(new EddyError(code, 'x').retriable).toBe(false);
  });

  it.each(['EDDY_USER_FUNCTION', 'EDDY_JOB_FAILED'] as const)(
    '%s follows an EddyError cause, and is retriable otherwise',
    (code) => {
      expect(defaultRetriable(code)).toBe(true);
      expect(defaultRetriable(code, new Error('x'))).toBe(true);
      expect(defaultRetriable(code, 'a string')).toBe(true);
      expect(defaultRetriable(code, new EddyError('EDDY_SINK_IO', 'x'))).toBe(true);
      expect(defaultRetriable(code, new EddyError('EDDY_BAD_RECORD', 'x'))).toBe(false);
      expect(defaultRetriable(code, new FatalError('stop'))).toBe(false);
    },
  );

  it('an explicit retriable overrides the table both ways', () => {
    expect(new EddyError('EDDY_SINK_IO', 'x', { retriable: false }).retriable).toBe(false);
    expect(new EddyError('EDDY_STATE', 'x', { retriable: true }).retriable).toBe(true);
    expect(
      new EddyError('EDDY_JOB_FAILED', 'x', { retriable: true, cause: new FatalError('f') })
        .retriable,
    ).toBe(true);
  });

  it('covers every code of the classes', () => {
    expect(new InvalidArgumentError('x').retriable).toBe(false);
    expect(new InvalidArgumentError('x', 'EDDY_INVALID_PARALLELISM').retriable).toBe(false);
    expect(new UnhashableKeyError('x').retriable).toBe(false);
    expect(new BadRecordError({ file: 'f', line: 1 }, 'x').retriable).toBe(false);
    expect(new InternalError('x').retriable).toBe(true);
    expect(new JobFailedError('x').retriable).toBe(true);
    expect(new JobFailedError('x', new Error('plain')).retriable).toBe(true);
    expect(new JobFailedError('x', new BadRecordError({ file: 'f', line: 1 }, 'y')).retriable).toBe(
      false,
    );
    expect(new JobFailedError('x', new EddyError('EDDY_WORKER_CRASHED', 'y')).retriable).toBe(true);
  });
});

describe('FatalError', () => {
  it('is a user-domain EDDY_FATAL that is never retriable', () => {
    const cause = new Error('missing config');
    const e = new FatalError('cannot run without a config', { cause });
    expect(e).toBeInstanceOf(EddyError);
    expect(e.name).toBe('FatalError');
    expect(e.code).toBe('EDDY_FATAL');
    expect(e.domain).toBe('user');
    expect(e.retriable).toBe(false);
    expect(e.message).toBe('cannot run without a config');
    expect(e.cause).toBe(cause);
    expect(new FatalError('x').cause).toBeUndefined();
  });

  it('makes the UserFunctionError around it not retriable; other user errors stay retriable', () => {
    expect(new UserFunctionError(MAP, 'map', 3, new FatalError('no')).retriable).toBe(false);
    expect(new UserFunctionError(MAP, 'map', 3, new TypeError('oops')).retriable).toBe(true);
    expect(new UserFunctionError(MAP, 'map', 3, 'a string').retriable).toBe(true);
    expect(
      new UserFunctionError(MAP, 'map', 3, new EddyError('EDDY_SINK_IO', 'io')).retriable,
    ).toBe(true);
    expect(new UserFunctionError(MAP, 'map', 3, new InvalidArgumentError('bad')).retriable).toBe(
      false,
    );
  });

  it('is exported from the public API', async () => {
    const api = await import('../index.js');
    expect(api.FatalError).toBe(FatalError);
  });
});

describe('message formats', () => {
  it('stay as before', () => {
    expect(new UserFunctionError(MAP, 'map', 7, new Error('boom')).message).toBe(
      "operator 'enrich' (uid enrich), subtask 2/4 failed in map at record #7: boom",
    );
    expect(new UserFunctionError(MAP, 'open', undefined, 'str').message).toBe(
      "operator 'enrich' (uid enrich), subtask 2/4 failed in open: str",
    );
    expect(new BadRecordError({ file: 'a.jsonl', line: 3 }, 'bad json').message).toBe(
      'malformed record in a.jsonl at line 3: bad json',
    );
  });
});

describe('attributeTo', () => {
  it('returns an error already attributed unchanged', () => {
    const user = new UserFunctionError(MAP, 'map', 1, new Error('x'));
    expect(attributeTo(SINK, user)).toBe(user);
    const attributed = attributeTo(MAP, new EddyError('EDDY_SINK_IO', 'disk full'));
    expect(attributeTo(SINK, attributed)).toBe(attributed);
  });

  it('wraps an unattributed EddyError, keeping code, domain and retriable', () => {
    const io = new EddyError('EDDY_SINK_IO', 'cannot write part-0: ENOSPC', {
      domain: 'external',
      retriable: true,
    });
    const e = attributeTo(SINK, io);
    expect(e).toBeInstanceOf(EddyError);
    expect(e.code).toBe('EDDY_SINK_IO');
    expect(e.domain).toBe('external');
    expect(e.retriable).toBe(true);
    expect(e.subtask).toEqual(SINK);
    expect(e.cause).toBe(io);
    expect(e.message).toBe(`${describeSubtask(SINK)}: cannot write part-0: ENOSPC`);

    const bad = attributeTo(MAP, new BadRecordError({ file: 'f', line: 2 }, 'x'));
    expect(bad.code).toBe('EDDY_BAD_RECORD');
    expect(bad.domain).toBe('user');
    expect(bad.retriable).toBe(false);
    // An explicit override travels too.
    expect(attributeTo(MAP, new EddyError('EDDY_STATE', 'x', { retriable: true })).retriable).toBe(
      true,
    );
  });

  it('wraps anything else in an EDDY_JOB_FAILED naming the subtask', () => {
    const plain = new TypeError('x is undefined');
    const e = attributeTo(MAP, plain);
    expect(e).toBeInstanceOf(JobFailedError);
    expect(e.code).toBe('EDDY_JOB_FAILED');
    expect(e.subtask).toEqual(MAP);
    expect(e.cause).toBe(plain);
    expect(e.retriable).toBe(true);
    expect(e.message).toBe(`${describeSubtask(MAP)}: x is undefined`);
    expect(attributeTo(MAP, 42).message).toBe(`${describeSubtask(MAP)}: 42`);
  });

  it('never looks at the message: a text naming the operator is not an attribution', () => {
    const e = new EddyError('EDDY_SINK_IO', `${describeSubtask(SINK)}: looks attributed`);
    expect(attributeTo(SINK, e)).not.toBe(e);
    expect(attributeTo(SINK, e).subtask).toEqual(SINK);
  });

  it('only UserFunctionError and attributed errors carry a subtask', () => {
    expect(new EddyError('EDDY_INTERNAL', 'x').subtask).toBeUndefined();
    expect(new UserFunctionError(MAP, 'map', 1, 'x').subtask).toEqual(MAP);
    expect(new JobFailedError('x', undefined, SINK).subtask).toEqual(SINK);
  });
});

describe('serializeError / deserializeError', () => {
  it('keeps a UserFunctionError: class, message, fields, retriable and its cause', () => {
    const cause = new TypeError('boom');
    const e = new UserFunctionError(MAP, 'map', 1234, cause);
    const back = roundTrip(e);
    expect(back).toBeInstanceOf(UserFunctionError);
    expect(back).toBeInstanceOf(EddyError);
    expect(back).toBeInstanceOf(Error);
    expect(back.name).toBe('UserFunctionError');
    expect(back.message).toBe(e.message);
    expect(back.code).toBe('EDDY_USER_FUNCTION');
    expect(back.domain).toBe('user');
    expect(back.retriable).toBe(true);
    expect(back.stack).toBe(e.stack);
    const u = back as UserFunctionError;
    expect(u.subtask).toEqual(MAP);
    expect(u.recordPosition).toBe(1234);
    expect(u.cause).toBeInstanceOf(Error);
    expect(u.cause).not.toBeInstanceOf(EddyError);
    expect((u.cause as Error).name).toBe('TypeError');
    expect((u.cause as Error).message).toBe('boom');
    expect((u.cause as Error).stack).toBe(cause.stack);
  });

  it('keeps an undefined record position undefined', () => {
    const back = roundTrip(new UserFunctionError(MAP, 'open', undefined, 'x')) as UserFunctionError;
    expect(back).toBeInstanceOf(UserFunctionError);
    expect(back.recordPosition).toBeUndefined();
    expect(back.cause).toBe('x');
  });

  it('keeps a FatalError inside a UserFunctionError, so the job is still not retriable', () => {
    const e = new UserFunctionError(MAP, 'map', 5, new FatalError('give up'));
    const back = roundTrip(e);
    expect(back.retriable).toBe(false);
    expect(back.cause).toBeInstanceOf(FatalError);
    const fatal = back.cause as FatalError;
    expect(fatal.code).toBe('EDDY_FATAL');
    expect(fatal.retriable).toBe(false);
    expect(fatal.domain).toBe('user');
    expect(fatal.message).toBe('give up');
  });

  it('keeps a BadRecordError and its origin', () => {
    const e = new BadRecordError(
      { file: '/in/a.jsonl', line: 2 },
      'Unexpected end',
      new SyntaxError('json'),
    );
    const back = roundTrip(e) as BadRecordError;
    expect(back).toBeInstanceOf(BadRecordError);
    expect(back.message).toBe(e.message);
    expect(back.origin).toEqual({ file: '/in/a.jsonl', line: 2 });
    expect(back.retriable).toBe(false);
    expect((back.cause as Error).name).toBe('SyntaxError');
  });

  it.each([
    [
      'JobFailedError',
      () =>
        new JobFailedError(
          'job failed',
          new EddyError('EDDY_SOURCE_IO', 'io', { domain: 'external' }),
        ),
    ],
    ['InvalidArgumentError', () => new InvalidArgumentError('bad arg', 'EDDY_INVALID_PARALLELISM')],
    ['UnhashableKeyError', () => new UnhashableKeyError('bad key')],
    ['InternalError', () => new InternalError('bug', new Error('inner'))],
    ['FatalError', () => new FatalError('stop now')],
  ] as const)('rebuilds %s with the same message, code, domain and retriable', (name, make) => {
    const e = make();
    const back = roundTrip(e);
    expect(back.constructor).toBe(e.constructor);
    expect(back.name).toBe(name);
    expect(back.message).toBe(e.message);
    expect(back.code).toBe(e.code);
    expect(back.domain).toBe(e.domain);
    expect(back.retriable).toBe(e.retriable);
    expect(back.stack).toBe(e.stack);
  });

  it('keeps an attributed error and its subtask, as an EddyError', () => {
    const io = new EddyError('EDDY_SINK_IO', 'ENOSPC', { domain: 'external' });
    const e = attributeTo(SINK, io);
    const back = roundTrip(e);
    expect(back.constructor).toBe(EddyError);
    expect(back.message).toBe(e.message);
    expect(back.subtask).toEqual(SINK);
    expect(back.retriable).toBe(true);
    expect(attributeTo(MAP, back)).toBe(back);
    expect((back.cause as EddyError).code).toBe('EDDY_SINK_IO');
  });

  it('keeps an unknown subclass name on an EddyError', () => {
    class CustomError extends EddyError {
      constructor() {
        super('EDDY_STATE', 'custom', { domain: 'user' });
      }
    }
    const back = roundTrip(new CustomError());
    expect(back.constructor).toBe(EddyError);
    expect(back.name).toBe('CustomError');
    expect(back.code).toBe('EDDY_STATE');
    expect(back.retriable).toBe(false);
  });

  it('turns a plain Error at the top into EDDY_INTERNAL (retriable), keeping name and stack', () => {
    const plain = new RangeError('out of range');
    const back = roundTrip(plain);
    expect(back).toBeInstanceOf(EddyError);
    expect(back.code).toBe('EDDY_INTERNAL');
    expect(back.domain).toBe('internal');
    expect(back.retriable).toBe(true);
    expect(back.name).toBe('RangeError');
    expect(back.message).toBe('out of range');
    expect(back.stack).toBe(plain.stack);
  });

  it('turns a thrown non-error into EDDY_INTERNAL with its string', () => {
    const back = roundTrip({ toString: () => 'weird thing' });
    expect(back.code).toBe('EDDY_INTERNAL');
    expect(back.message).toBe('weird thing');
    expect(roundTrip(undefined).message).toBe('undefined');
  });

  it('keeps non-error causes as strings', () => {
    const back = roundTrip(new JobFailedError('x', { reason: 'obj' }));
    expect(back.cause).toBe('[object Object]');
    expect(roundTrip(new UserFunctionError(MAP, 'map', 1, 17)).cause).toBe('17');
  });

  it('keeps the cause chain, limited to MAX_CAUSE_DEPTH levels', () => {
    let e: Error = new Error('level 20');
    for (let i = 19; i >= 0; i--) e = new EddyError('EDDY_INTERNAL', `level ${i}`, { cause: e });
    const s = serializeError(e);
    // Plain data: JSON-safe as well as clone-safe.
    expect(JSON.parse(JSON.stringify(s))).toEqual(structuredClone(s));
    let back: unknown = roundTrip(e);
    for (let i = 0; i <= MAX_CAUSE_DEPTH; i++) {
      expect(back).toBeInstanceOf(EddyError);
      expect((back as Error).message).toBe(`level ${i}`);
      back = (back as Error).cause;
    }
    expect(back).toBe(`EddyError: level ${MAX_CAUSE_DEPTH + 1}`);
  });

  it('survives a cyclic cause chain', () => {
    const a = new EddyError('EDDY_INTERNAL', 'a');
    const b = new EddyError('EDDY_INTERNAL', 'b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(() => roundTrip(a)).not.toThrow();
  });

  it('keeps plain-error causes with causes of their own', () => {
    const inner = new Error('inner', { cause: new FatalError('deep') });
    const back = roundTrip(new UserFunctionError(MAP, 'map', 1, inner));
    const c = back.cause as Error;
    expect(c).not.toBeInstanceOf(EddyError);
    expect(c.message).toBe('inner');
    expect(c.cause).toBeInstanceOf(FatalError);
  });

  it('refuses to rebuild a class whose fields are missing, keeping its name', () => {
    const s: SerializedError = {
      name: 'UserFunctionError',
      code: 'EDDY_USER_FUNCTION',
      message: 'no subtask',
      domain: 'user',
      retriable: true,
    };
    const back = deserializeError(s);
    expect(back).not.toBeInstanceOf(UserFunctionError);
    expect(back.name).toBe('UserFunctionError');
    expect(back.message).toBe('no subtask');
    const bad = deserializeError({ ...s, name: 'BadRecordError', code: 'EDDY_BAD_RECORD' });
    expect(bad).not.toBeInstanceOf(BadRecordError);
  });

  it('does not treat inherited names as classes', () => {
    const back = deserializeError({
      name: 'toString',
      code: 'EDDY_INTERNAL',
      message: 'x',
      domain: 'internal',
      retriable: true,
    });
    expect(back.constructor).toBe(EddyError);
    expect(back.name).toBe('toString');
  });
});

describe('previewRecord', () => {
  it('is the JSON of the record, truncated to 200 characters', () => {
    expect(previewRecord({ n: 1234 })).toBe('{"n":1234}');
    const long = previewRecord({ s: 'x'.repeat(1000) });
    expect(long).toHaveLength(200);
    expect(long.endsWith('…')).toBe(true);
  });

  it('never throws: bigints, cyclic objects, undefined', () => {
    expect(previewRecord({ big: 12n })).toBe('{"big":"12n"}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(previewRecord(cyclic)).toBe('[object Object]');
    expect(previewRecord(undefined)).toBe('undefined');
  });

  it('crosses threads with the UserFunctionError that carries it', () => {
    const ref: SubtaskRef = {
      operatorName: 'm',
      operatorUid: 'm',
      subtaskIndex: 0,
      parallelism: 1,
    };
    const e = new UserFunctionError(ref, 'map', 3, new Error('boom'), '{"n":1}');
    const back = deserializeError(structuredClone(serializeError(e)));
    expect(back).toBeInstanceOf(UserFunctionError);
    expect((back as UserFunctionError).recordPreview).toBe('{"n":1}');
  });
});
