import { describe, expect, it } from 'vitest';
import {
  attributeTo,
  BadRecordError,
  deserializeError,
  EddyError,
  type ErrorCode,
  FatalError,
  InternalError,
  InvalidArgumentError,
  JobFailedError,
  type SubtaskRef,
  serializeError,
  UnhashableKeyError,
  UserFunctionError,
} from '../core/errors.js';
import { DEFAULT_RESTART } from './job-master.js';
import {
  decideRestart,
  isRetriable,
  nonRetriableCause,
  type RestartDecision,
  type RestartStrategy,
} from './restart.js';

const MAP: SubtaskRef = {
  operatorName: 'parse',
  operatorUid: 'parse',
  subtaskIndex: 0,
  parallelism: 2,
};
const FIXED: RestartStrategy = { kind: 'fixed-delay', attempts: 3, delayMs: 250 };
const BACKOFF: RestartStrategy = {
  kind: 'exponential-backoff',
  attempts: 6,
  initialDelayMs: 100,
  maxDelayMs: 1000,
};
const NONE: RestartStrategy = { kind: 'none' };

const crossThread = (e: EddyError): EddyError =>
  deserializeError(structuredClone(serializeError(e)));
const io = () => new EddyError('EDDY_SINK_IO', 'cannot write: ENOSPC', { domain: 'external' });
const badRecord = () => new BadRecordError({ file: 'in.jsonl', line: 4 }, 'bad json');

describe('isRetriable', () => {
  it.each<[string, () => EddyError]>([
    ['source I/O', () => new EddyError('EDDY_SOURCE_IO', 'x')],
    ['sink I/O', io],
    ['checkpoint I/O', () => new EddyError('EDDY_CHECKPOINT_IO', 'x')],
    ['a lost worker', () => new EddyError('EDDY_WORKER_CRASHED', 'x')],
    ['a timeout', () => new EddyError('EDDY_TIMEOUT', 'x')],
    ['a failed checkpoint', () => new EddyError('EDDY_CHECKPOINT_FAILED', 'x')],
    ['an internal error', () => new InternalError('bug')],
    ['a plain user exception', () => new UserFunctionError(MAP, 'map', 1, new Error('boom'))],
    ['a thrown string', () => new UserFunctionError(MAP, 'map', 1, 'boom')],
    ['a job failure without cause', () => new JobFailedError('failed')],
    ['a job failure from a plain error', () => new JobFailedError('failed', new Error('x'))],
    ['a job failure from I/O', () => new JobFailedError('failed', io())],
    ['user code failing on I/O', () => new UserFunctionError(MAP, 'map', 1, io())],
    ['attributed I/O', () => attributeTo(MAP, io())],
    ['attributed plain error', () => attributeTo(MAP, new Error('x'))],
    ['a job failure from attributed I/O', () => new JobFailedError('f', attributeTo(MAP, io()))],
  ])('restarts on %s', (_, make) => {
    expect(isRetriable(make())).toBe(true);
    expect(nonRetriableCause(make())).toBeUndefined();
    expect(isRetriable(crossThread(make()))).toBe(true);
  });

  it.each<[string, () => EddyError, ErrorCode]>([
    ['a malformed record', badRecord, 'EDDY_BAD_RECORD'],
    [
      'a non-deterministic job',
      () => new EddyError('EDDY_NONDETERMINISTIC_JOB', 'x', { domain: 'user' }),
      'EDDY_NONDETERMINISTIC_JOB',
    ],
    ['an invalid job', () => new EddyError('EDDY_INVALID_JOB', 'x'), 'EDDY_INVALID_JOB'],
    ['an invalid argument', () => new InvalidArgumentError('x'), 'EDDY_INVALID_ARGUMENT'],
    ['an unhashable key', () => new UnhashableKeyError('x'), 'EDDY_UNHASHABLE_KEY'],
    [
      'a corrupt checkpoint',
      () => new EddyError('EDDY_CHECKPOINT_CORRUPT', 'x'),
      'EDDY_CHECKPOINT_CORRUPT',
    ],
    ['a fatal error', () => new FatalError('stop'), 'EDDY_FATAL'],
    [
      'user code throwing FatalError',
      () => new UserFunctionError(MAP, 'map', 1, new FatalError('stop')),
      'EDDY_FATAL',
    ],
    [
      'user code throwing a non-retriable EddyError',
      () => new UserFunctionError(MAP, 'map', 1, new InvalidArgumentError('x')),
      'EDDY_INVALID_ARGUMENT',
    ],
    [
      'a job failure from a bad record',
      () => new JobFailedError('f', badRecord()),
      'EDDY_BAD_RECORD',
    ],
    ['an attributed bad record', () => attributeTo(MAP, badRecord()), 'EDDY_BAD_RECORD'],
    [
      'a job failure from an attributed bad record',
      () => new JobFailedError('f', attributeTo(MAP, badRecord())),
      'EDDY_BAD_RECORD',
    ],
    [
      'a job failure from user code that threw FatalError',
      () => new JobFailedError('f', new UserFunctionError(MAP, 'map', 1, new FatalError('x'))),
      'EDDY_FATAL',
    ],
    [
      'user code throwing a FatalError with a plain cause',
      () => new UserFunctionError(MAP, 'map', 1, new FatalError('x', { cause: new Error('y') })),
      'EDDY_FATAL',
    ],
    [
      'I/O marked not retriable',
      () => new EddyError('EDDY_SINK_IO', 'x', { retriable: false }),
      'EDDY_SINK_IO',
    ],
  ])('fails fast on %s, blaming %s', (_, make, culprit) => {
    expect(isRetriable(make())).toBe(false);
    expect(nonRetriableCause(make())?.code).toBe(culprit);
    // The decision is the same after the error crossed a thread.
    expect(isRetriable(crossThread(make()))).toBe(false);
    expect(nonRetriableCause(crossThread(make()))?.code).toBe(culprit);
  });

  it('looks at the cause only for EDDY_JOB_FAILED and EDDY_USER_FUNCTION', () => {
    // A retriable error of another code wrapping a final one goes by its own flag.
    const e = new EddyError('EDDY_SINK_IO', 'x', { cause: new FatalError('inner') });
    expect(isRetriable(e)).toBe(true);
    // A wrapping code forced retriable still looks at its cause.
    const forced = new EddyError('EDDY_JOB_FAILED', 'x', { retriable: true, cause: badRecord() });
    expect(isRetriable(forced)).toBe(false);
  });

  it('follows at most 8 wrapping levels, and stops on cycles', () => {
    let deep: EddyError = new FatalError('deep');
    for (let i = 0; i < 20; i++) {
      deep = new EddyError('EDDY_JOB_FAILED', `level ${i}`, { retriable: true, cause: deep });
    }
    expect(isRetriable(deep)).toBe(true);
    const a = new EddyError('EDDY_JOB_FAILED', 'a', { retriable: true });
    const b = new EddyError('EDDY_JOB_FAILED', 'b', { retriable: true, cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(isRetriable(a)).toBe(true);
  });
});

describe('decideRestart', () => {
  const restart = (delayMs: number): RestartDecision => ({ restart: true, delayMs });

  it('fixed delay: the same delay for each attempt, then no more', () => {
    expect(decideRestart(io(), FIXED, 0)).toEqual(restart(250));
    expect(decideRestart(io(), FIXED, 1)).toEqual(restart(250));
    expect(decideRestart(io(), FIXED, 2)).toEqual(restart(250));
    expect(decideRestart(io(), FIXED, 3)).toEqual({
      restart: false,
      reason: 'no restart attempts left (3 of 3 used)',
    });
    expect(decideRestart(io(), FIXED, 10).restart).toBe(false);
  });

  it('exponential backoff: doubling from the initial delay, capped, then no more', () => {
    const delays = [0, 1, 2, 3, 4, 5].map((n) => decideRestart(io(), BACKOFF, n));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000].map(restart));
    expect(decideRestart(io(), BACKOFF, 6)).toEqual({
      restart: false,
      reason: 'no restart attempts left (6 of 6 used)',
    });
  });

  it('the default strategy computes what the job master always did', () => {
    expect(decideRestart(io(), DEFAULT_RESTART, 0)).toEqual(restart(200));
    expect(decideRestart(io(), DEFAULT_RESTART, 4)).toEqual(restart(3200));
    expect(decideRestart(io(), DEFAULT_RESTART, 5).restart).toBe(false);
  });

  it('zero attempts never restart', () => {
    expect(decideRestart(io(), { ...FIXED, attempts: 0 }, 0).restart).toBe(false);
    expect(decideRestart(io(), { ...BACKOFF, attempts: 0 }, 0).restart).toBe(false);
  });

  it("strategy 'none' never restarts", () => {
    expect(decideRestart(io(), NONE, 0)).toEqual({
      restart: false,
      reason: "restarts are disabled (restart strategy 'none')",
    });
  });

  it('never restarts a non-retriable failure, whatever attempts are left, naming its code', () => {
    for (const s of [FIXED, BACKOFF, NONE]) {
      expect(decideRestart(badRecord(), s, 0)).toEqual({
        restart: false,
        reason: 'EDDY_BAD_RECORD is not retriable: a restart would fail the same way',
      });
    }
    expect(decideRestart(new FatalError('stop'), BACKOFF, 0)).toEqual({
      restart: false,
      reason: 'EDDY_FATAL is not retriable: a restart would fail the same way',
    });
  });

  it('names the innermost final code when the failure is wrapped', () => {
    const user = new UserFunctionError(MAP, 'map', 1, new FatalError('stop'));
    expect(decideRestart(user, BACKOFF, 0)).toEqual({
      restart: false,
      reason:
        'EDDY_USER_FUNCTION is not retriable (caused by EDDY_FATAL): a restart would fail the same way',
    });
    const job = crossThread(new JobFailedError('f', attributeTo(MAP, badRecord())));
    expect(decideRestart(job, FIXED, 1)).toEqual({
      restart: false,
      reason:
        'EDDY_JOB_FAILED is not retriable (caused by EDDY_BAD_RECORD): a restart would fail the same way',
    });
  });

  it('restarts retriable failures that crossed a thread', () => {
    const user = crossThread(new UserFunctionError(MAP, 'map', 1, new Error('flaky')));
    expect(decideRestart(user, FIXED, 0)).toEqual(restart(250));
    const lost = crossThread(new JobFailedError('x', new EddyError('EDDY_WORKER_CRASHED', 'gone')));
    expect(decideRestart(lost, BACKOFF, 2)).toEqual(restart(400));
  });
});
