/**
 * The job master against a fake worker pool: the test plays the workers (ready, ack,
 * declined, finished, failed, closed) and reads what the master posted to them; checkpoints
 * go to a real temporary directory. Nothing here waits for time to pass: timers are faked
 * where a timer decides something, and every wait is for an explicit message or promise.
 */
import { mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CheckpointStorage } from '../checkpoint/index.js';
import { deferred } from '../control/testing.js';
import { EddyError, serializeError } from '../core/errors.js';
import { setFaults } from './faults.js';
import type { JobGraph } from './graph.js';
import {
  type CheckpointConfig,
  JobMaster,
  type JobRunResult,
  type MasterOptions,
  type WorkerHandle,
  type WorkerPool,
} from './job-master.js';
import type { FromWorker, RestoreSource, ToWorker } from './protocol.js';

const WORKERS = 2;

const graph: JobGraph = {
  name: 'master-test',
  nodes: [
    {
      id: 0,
      kind: 'source',
      uid: 'src',
      name: 'source',
      parallelism: WORKERS,
      maxParallelism: 8,
      source: {} as never,
    },
  ],
  edges: [],
};

class FakeWorker implements WorkerHandle {
  readonly posted: ToWorker[] = [];
  terminated = false;
  onTerminate: (() => void) | undefined;
  private handler: ((m: FromWorker) => void) | undefined;
  private crashHandler: ((e: EddyError) => void) | undefined;
  private waiters: Array<{ match: (m: ToWorker) => boolean; resolve: (m: ToWorker) => void }> = [];

  constructor(readonly index: number) {}

  post(m: ToWorker): void {
    this.posted.push(m);
    for (const w of this.waiters.filter((x) => x.match(m))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(m);
    }
  }
  onMessage(handler: (m: FromWorker) => void): void {
    this.handler = handler;
  }
  onCrash(handler: (e: EddyError) => void): void {
    this.crashHandler = handler;
  }
  async terminate(): Promise<void> {
    this.terminated = true;
    this.onTerminate?.();
  }

  emit(m: FromWorker): void {
    this.handler!(m);
  }
  crash(e: EddyError): void {
    this.crashHandler!(e);
  }
  /** The first message (already posted or still to come) that matches. */
  next<T extends ToWorker['type']>(
    type: T,
    match: (m: Extract<ToWorker, { type: T }>) => boolean = () => true,
  ): Promise<Extract<ToWorker, { type: T }>> {
    const ok = (m: ToWorker): m is Extract<ToWorker, { type: T }> =>
      m.type === type && match(m as Extract<ToWorker, { type: T }>);
    const seen = this.posted.find(ok);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) =>
      this.waiters.push({ match: ok, resolve: resolve as (m: ToWorker) => void }),
    );
  }
  sent(type: ToWorker['type']): ToWorker[] {
    return this.posted.filter((m) => m.type === type);
  }
  ack(checkpointId: number): void {
    this.emit({
      type: 'ack',
      checkpointId,
      operators: [{ uid: 'src', handle: { index: this.index } }],
      syncMs: 1,
      asyncMs: 2,
      bytes: 10,
    });
  }
}

interface FakeAttempt {
  readonly restore: RestoreSource | undefined;
  readonly workers: FakeWorker[];
}

class FakePool implements WorkerPool {
  readonly attempts: FakeAttempt[] = [];
  private waiters: Array<{ n: number; resolve: (a: FakeAttempt) => void }> = [];

  spawn(restore: RestoreSource | undefined): WorkerHandle[] {
    const attempt = { restore, workers: [0, 1].map((i) => new FakeWorker(i)) };
    this.attempts.push(attempt);
    for (const w of this.waiters.filter((x) => x.n < this.attempts.length)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(this.attempts[w.n]!);
    }
    return attempt.workers;
  }

  /** Attempt `n` (0-based), once spawned. */
  attempt(n: number): Promise<FakeAttempt> {
    const a = this.attempts[n];
    if (a) return Promise.resolve(a);
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

let tmp: string;
let dir: string;
let pool: FakePool;
let logs: string[];

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'eddy-master-'));
  dir = join(tmp, 'checkpoints');
  pool = new FakePool();
  logs = [];
});
afterEach(async () => {
  setFaults([]);
  vi.useRealTimers();
  vi.restoreAllMocks();
  await rm(tmp, { recursive: true, force: true });
});

/** A master over the fake pool; `false`: without checkpoints. */
const master = (
  checkpoint: Partial<CheckpointConfig> | false = {},
  options: Partial<MasterOptions> = {},
) =>
  new JobMaster(graph, pool, {
    jobId: 'job-1',
    checkpoint: checkpoint ? { intervalMs: undefined, dir, ...checkpoint } : undefined,
    log: (l) => void logs.push(l),
    ...options,
  });

/** Starts the run (attempt 0) or waits for attempt `n`, and makes its workers ready. */
const started = async (m: JobMaster, n = 0) => {
  const run = n === 0 ? m.run() : undefined;
  run?.catch(() => {});
  const a = await pool.attempt(n);
  for (const w of a.workers) w.emit({ type: 'ready' });
  return { run, workers: a.workers, attempt: a };
};

const both = <T>(workers: FakeWorker[], f: (w: FakeWorker) => Promise<T>) =>
  Promise.all(workers.map(f));

/** Every worker finishes; the final checkpoint (if any) is acked; all close. */
const finish = async (workers: FakeWorker[], finalCheckpoint: number | undefined) => {
  for (const w of workers) w.emit({ type: 'finished', reports: [] });
  if (finalCheckpoint !== undefined) {
    await both(workers, (w) => w.next('checkpoint', (m) => m.checkpointId === finalCheckpoint));
    for (const w of workers) w.ack(finalCheckpoint);
  }
  await both(workers, (w) => w.next('close'));
  for (const w of workers) w.emit({ type: 'closed', reports: [] });
};

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/**
 * Replaces CheckpointStorage.commit. `write-then-wait`: writes `_metadata`, resolves `called`
 * with the directory, then waits for `release()`. `wait-then-fail`: resolves `called`, waits
 * for `release()`, then fails without writing. `fail-after-write`: writes `_metadata`, then
 * reports a failure (as when the final directory fsync fails). `wait-then-write`: resolves
 * `called`, waits for `release()`, then writes.
 */
const gateCommits = (
  how: 'write-then-wait' | 'wait-then-write' | 'wait-then-fail' | 'fail-after-write',
) => {
  const original = CheckpointStorage.prototype.commit;
  const release = deferred<void>();
  const called = deferred<string>();
  vi.spyOn(CheckpointStorage.prototype, 'commit').mockImplementation(async function (
    this: CheckpointStorage,
    d,
    metadata,
  ) {
    if (how !== 'write-then-wait') called.resolve(d);
    if (how === 'wait-then-fail') {
      await release.promise;
      throw new EddyError('EDDY_CHECKPOINT_IO', `cannot write ${d}/_metadata.tmp: ENOSPC`);
    }
    if (how === 'wait-then-write') await release.promise;
    await original.call(this, d, metadata);
    if (how === 'write-then-wait') {
      called.resolve(d);
      await release.promise;
    }
    if (how === 'fail-after-write') {
      throw new EddyError('EDDY_CHECKPOINT_IO', `cannot fsync ${d}: EIO`, { domain: 'external' });
    }
  });
  return { release: () => release.resolve(), called: called.promise };
};

describe('JobMaster: a checkpoint that commits while its attempt fails', () => {
  it('is not announced to the dead attempt and becomes the restore point', async () => {
    const gate = gateCommits('write-then-wait');
    const m = master({}, { restart: { kind: 'fixed-delay', attempts: 1, delayMs: 0 } });
    const { run, workers } = await started(m);
    // The final checkpoint at the end of input is checkpoint 1.
    for (const w of workers) w.emit({ type: 'finished', reports: [] });
    await both(workers, (w) => w.next('checkpoint', (x) => x.checkpointId === 1));
    for (const w of workers) w.ack(1);
    const chk = await gate.called;
    // _metadata is written; the commit has not returned when the attempt fails.
    workers[1]!.emit({
      type: 'failed',
      error: serializeError(
        new EddyError('EDDY_SOURCE_IO', 'disk gone', { domain: 'external', retriable: true }),
      ),
    });
    // The committing checkpoint is not deleted and no restart happens before its outcome.
    expect(await exists(join(chk, '_metadata'))).toBe(true);
    expect(pool.attempts).toHaveLength(1);
    gate.release();
    const second = await started(m, 1);
    expect(second.attempt.restore?.dir).toBe(chk);
    expect(second.attempt.restore?.metadata.checkpointId).toBe(1);
    for (const w of workers) {
      expect(w.sent('checkpointComplete')).toEqual([]);
      expect(w.sent('checkpointAborted')).toEqual([]);
    }
    expect(logs.some((l) => l.includes('checkpoint 1 completed after its attempt failed'))).toBe(
      true,
    );
    expect(logs.some((l) => l.includes('restarting from checkpoint 1'))).toBe(true);
    // The restarted attempt's final checkpoint is 2, announced to it only.
    await finish(second.workers, 2);
    const result = (await run) as JobRunResult;
    expect(result.restarts).toBe(1);
    for (const w of second.workers) {
      expect(w.sent('checkpointComplete')).toEqual([
        { type: 'checkpointComplete', checkpointId: 2 },
      ]);
    }
    for (const w of workers) expect(w.sent('checkpointComplete')).toEqual([]);
  });

  it('the restart waits for the commit and restores from what it wrote', async () => {
    const gate = gateCommits('wait-then-write');
    const m = master({}, { restart: { kind: 'fixed-delay', attempts: 1, delayMs: 0 } });
    const { workers } = await started(m);
    for (const w of workers) w.emit({ type: 'finished', reports: [] });
    await both(workers, (w) => w.next('checkpoint', (x) => x.checkpointId === 1));
    for (const w of workers) w.ack(1);
    const chk = await gate.called;
    // _metadata is written only once the failed attempt's workers are terminated: a restart
    // that did not wait for the commit would look for the restore point before it exists.
    workers[1]!.onTerminate = gate.release;
    workers[0]!.crash(new EddyError('EDDY_WORKER_CRASHED', 'worker 0 exited with code 1'));
    const second = await pool.attempt(1);
    expect(second.restore?.dir).toBe(chk);
    for (const w of workers) expect(w.sent('checkpointComplete')).toEqual([]);
  });

  it('is declined and deleted when its commit fails and nothing valid is on disk', async () => {
    const gate = gateCommits('wait-then-fail');
    const m = master({}, { restart: { kind: 'fixed-delay', attempts: 1, delayMs: 0 } });
    const { workers } = await started(m);
    for (const w of workers) w.emit({ type: 'finished', reports: [] });
    await both(workers, (w) => w.next('checkpoint', (x) => x.checkpointId === 1));
    for (const w of workers) w.ack(1);
    const chk = await gate.called;
    workers[0]!.crash(new EddyError('EDDY_WORKER_CRASHED', 'worker 0 exited with code 1'));
    // Still committing: not deleted, no restart yet.
    expect(await exists(chk)).toBe(true);
    expect(pool.attempts).toHaveLength(1);
    gate.release();
    const second = await pool.attempt(1);
    expect(second.restore).toBeUndefined();
    expect(await exists(chk)).toBe(false);
    for (const w of workers) {
      expect(w.sent('checkpointComplete')).toEqual([]);
      expect(w.sent('checkpointAborted')).toEqual([]);
    }
    expect(logs).toContain(
      `checkpoint 1 failed: cannot write ${chk}/_metadata.tmp: ENOSPC; no valid _metadata after the commit: ${chk}/_metadata is missing: ${chk} is not a completed checkpoint or savepoint`,
    );
  });
});

describe('JobMaster: the commit outcome comes from disk', () => {
  it('a commit that reports failure after _metadata was written completes the checkpoint', async () => {
    gateCommits('fail-after-write');
    const m = master();
    const { run, workers } = await started(m);
    const sp = m.savepoint(join(tmp, 'sp'));
    await both(workers, (w) => w.next('checkpoint', (x) => x.checkpointId === 1));
    for (const w of workers) w.ack(1);
    const path = await sp;
    expect(await exists(join(path, '_metadata'))).toBe(true);
    for (const w of workers) {
      expect(w.sent('checkpointComplete')).toEqual([
        { type: 'checkpointComplete', checkpointId: 1 },
      ]);
    }
    vi.restoreAllMocks();
    await finish(workers, 2);
    await run;
  });

  it('a commit that fails with nothing on disk declines it, deletes it and the job goes on', async () => {
    const m = master();
    const { run, workers } = await started(m);
    const sp = m.savepoint(join(tmp, 'sp'));
    const cp = await workers[0]!.next('checkpoint', (x) => x.checkpointId === 1);
    await workers[1]!.next('checkpoint', (x) => x.checkpointId === 1);
    // /dev/full fails every write with ENOSPC.
    await symlink('/dev/full', join(cp.dir, '_metadata.tmp'));
    for (const w of workers) w.ack(1);
    await expect(sp).rejects.toThrow(/savepoint 1 failed: .*ENOSPC/);
    await vi.waitFor(async () => expect(await exists(cp.dir)).toBe(false));
    for (const w of workers) {
      expect(w.sent('checkpointAborted')).toEqual([{ type: 'checkpointAborted', checkpointId: 1 }]);
      expect(w.sent('checkpointComplete')).toEqual([]);
    }
    await finish(workers, 2);
    await run;
    for (const w of workers) {
      expect(w.sent('checkpointComplete')).toEqual([
        { type: 'checkpointComplete', checkpointId: 2 },
      ]);
    }
    expect(await new CheckpointStorage(dir).listCompleted()).toEqual([2]);
  });
});

describe('JobMaster: declines', () => {
  it('a worker declining broadcasts checkpointAborted, names the worker, and the job goes on', async () => {
    const m = master();
    const { run, workers } = await started(m);
    const sp = m.savepoint(join(tmp, 'sp'));
    const cp = await workers[0]!.next('checkpoint', (x) => x.checkpointId === 1);
    workers[0]!.ack(1);
    workers[1]!.emit({ type: 'declined', checkpointId: 1, reason: 'barrier 2 overtook it' });
    await expect(sp).rejects.toThrow(
      'savepoint 1 failed: worker 1 declined it: barrier 2 overtook it',
    );
    expect(logs).toContain('savepoint 1 failed: worker 1 declined it: barrier 2 overtook it');
    for (const w of workers) {
      expect(w.sent('checkpointAborted')).toEqual([{ type: 'checkpointAborted', checkpointId: 1 }]);
    }
    // A late ack or decline of it changes nothing; a source event is not handled yet.
    workers[1]!.ack(1);
    workers[0]!.emit({ type: 'declined', checkpointId: 1, reason: 'late' });
    workers[0]!.emit({ type: 'sourceEvent', uid: 'src', subtask: 0, event: {} });
    for (const w of workers) expect(w.sent('checkpointAborted')).toHaveLength(1);
    await vi.waitFor(async () => expect(await exists(cp.dir)).toBe(false));
    await finish(workers, 2);
    expect((await run!).stopped).toBe(false);
  });

  it('a worker failing its snapshot declines the checkpoint', async () => {
    const m = master();
    const { run, workers } = await started(m);
    const sp = m.savepoint(join(tmp, 'sp'));
    await workers[0]!.next('checkpoint');
    workers[0]!.emit({
      type: 'checkpointFailed',
      checkpointId: 1,
      error: serializeError(new EddyError('EDDY_CHECKPOINT_IO', 'EACCES', { domain: 'external' })),
    });
    await expect(sp).rejects.toMatchObject({
      code: 'EDDY_CHECKPOINT_FAILED',
      domain: 'external',
      message: 'savepoint 1 failed: EACCES',
    });
    for (const w of workers) expect(w.sent('checkpointAborted')).toHaveLength(1);
    await finish(workers, 2);
    await run;
  });
});

/** Fakes the timers and the clock; I/O and promises stay real. */
const fakeTimers = () =>
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });

describe('JobMaster: checkpoint timeout', () => {
  it('declines a checkpoint older than timeoutMs; the next one succeeds', async () => {
    fakeTimers();
    const m = master({ intervalMs: 1000, timeoutMs: 5000 });
    const { run, workers } = await started(m);
    await vi.advanceTimersByTimeAsync(1000);
    await both(workers, (w) => w.next('checkpoint', (x) => x.checkpointId === 1));
    workers[0]!.ack(1); // worker 1 never acks
    await vi.advanceTimersByTimeAsync(4999);
    expect(workers[0]!.sent('checkpointAborted')).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(logs).toContain('checkpoint 1 expired after 5000 ms');
    for (const w of workers) {
      expect(w.sent('checkpointAborted')).toEqual([{ type: 'checkpointAborted', checkpointId: 1 }]);
    }
    // The interval triggers checkpoint 2, which completes.
    await vi.advanceTimersByTimeAsync(1000);
    await both(workers, (w) => w.next('checkpoint', (x) => x.checkpointId === 2));
    for (const w of workers) w.ack(2);
    await both(workers, (w) => w.next('checkpointComplete', (x) => x.checkpointId === 2));
    // A late ack of the expired one is ignored.
    workers[1]!.ack(1);
    expect(workers[0]!.sent('checkpointComplete')).toHaveLength(1);
    await finish(workers, 3);
    await run;
    expect(await new CheckpointStorage(dir).listCompleted()).toEqual([3, 2]);
    await vi.waitFor(async () => expect(await readdir(dir)).not.toContain('chk-1'));
  });

  it('defaults to 10 minutes and refuses a non-positive timeout', async () => {
    fakeTimers();
    expect(() => master({ timeoutMs: 0 })).toThrow(/timeout must be > 0 ms, got 0/);
    const m = master({ intervalMs: 1000 });
    const { workers } = await started(m);
    await vi.advanceTimersByTimeAsync(1000);
    await workers[0]!.next('checkpoint');
    await vi.advanceTimersByTimeAsync(599_999);
    expect(workers[0]!.sent('checkpointAborted')).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(logs).toContain('checkpoint 1 expired after 600000 ms');
  });
});

describe('JobMaster: checkpoint timeout by the wall clock', () => {
  it('a timer that fires before the wall clock says so waits for the rest', async () => {
    fakeTimers();
    const m = master({ intervalMs: 1000, timeoutMs: 5000 });
    const { workers } = await started(m);
    await vi.advanceTimersByTimeAsync(1000);
    await workers[0]!.next('checkpoint');
    // The wall clock falls 300 ms behind the timers (e.g. an NTP step).
    vi.setSystemTime(Date.now() - 300);
    await vi.advanceTimersByTimeAsync(5000);
    expect(workers[0]!.sent('checkpointAborted')).toEqual([]);
    await vi.advanceTimersByTimeAsync(299);
    expect(workers[0]!.sent('checkpointAborted')).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(logs).toContain('checkpoint 1 expired after 5000 ms');
  });
});

describe('JobMaster: retention', () => {
  it('keeps the latest completed checkpoint, also while a newer one commits', async () => {
    fakeTimers();
    const original = CheckpointStorage.prototype.retain;
    const retentions: Array<{ args: unknown[]; done: Promise<string[]> }> = [];
    const retainGate = deferred<void>();
    vi.spyOn(CheckpointStorage.prototype, 'retain').mockImplementation(function (
      this: CheckpointStorage,
      ...args
    ) {
      const done = retainGate.promise.then(() => original.apply(this, args));
      retentions.push({ args, done });
      return done;
    });
    const m = master({ intervalMs: 1000, retain: 1 });
    const { run, workers } = await started(m);
    const checkpoint = async (id: number) => {
      await vi.advanceTimersByTimeAsync(1000);
      await both(workers, (w) => w.next('checkpoint', (x) => x.checkpointId === id));
      for (const w of workers) w.ack(id);
    };
    await checkpoint(1);
    await both(workers, (w) => w.next('checkpointComplete', (x) => x.checkpointId === 1));
    await checkpoint(2);
    await both(workers, (w) => w.next('checkpointComplete', (x) => x.checkpointId === 2));
    // Checkpoint 3 commits (its _metadata is written) while retention after 2 runs.
    const commitGate = gateCommits('write-then-wait');
    await checkpoint(3);
    await commitGate.called;
    expect(retentions.map((r) => r.args)).toEqual([
      [1, { inflightFrom: 2 }],
      [1, { inflightFrom: 3 }],
    ]);
    retainGate.resolve();
    await Promise.all(retentions.map((r) => r.done));
    // 2 is the latest completed; 3 is committing and untouched.
    expect(await new CheckpointStorage(dir).listCompleted()).toEqual([3, 2]);
    commitGate.release();
    await both(workers, (w) => w.next('checkpointComplete', (x) => x.checkpointId === 3));
    expect(retentions.at(-1)?.args).toEqual([1, { inflightFrom: 4 }]);
    await retentions.at(-1)?.done;
    expect(await readdir(dir)).toEqual(['chk-3']);
    await finish(workers, 4);
    await run;
  });
});

describe('JobMaster: stop versus drain', () => {
  it('stop --drain posts drain; a second stop changes nothing', async () => {
    const drained = master();
    const a = await started(drained);
    drained.stop(undefined, { drain: true });
    for (const w of a.workers) {
      expect(w.sent('stop')).toEqual([{ type: 'stop', drain: true, finalSnapshot: true }]);
    }
    drained.stop();
    expect(a.workers[0]!.sent('stop')).toHaveLength(1);
    await finish(a.workers, 1);
    expect((await a.run)?.stopped).toBe(true);
  });

  it('without checkpoints a plain stop makes no final snapshot', async () => {
    const plain = master(false);
    const a = await started(plain);
    plain.stop();
    expect(a.workers[0]!.sent('stop')).toEqual([
      { type: 'stop', drain: false, finalSnapshot: false },
    ]);
    await finish(a.workers, undefined);
    expect((await a.run)?.savepoint).toBeUndefined();
  });

  it('a stop requested before the workers are ready is posted when they are', async () => {
    const m = master(false);
    const run = m.run();
    const a = await pool.attempt(0);
    m.stop(join(tmp, 'sp'));
    for (const w of a.workers) w.emit({ type: 'ready' });
    for (const w of a.workers) {
      expect(w.sent('stop').at(-1)).toEqual({ type: 'stop', drain: false, finalSnapshot: true });
      expect(w.posted.findIndex((x) => x.type === 'stop')).toBeLessThan(
        w.posted.findIndex((x) => x.type === 'start'),
      );
    }
    await finish(a.workers, 1);
    const result = await run;
    expect(result.savepoint).toMatch(/savepoint-master-test-1-/);
    expect(await exists(join(result.savepoint!, '_metadata'))).toBe(true);
  });
});

describe('JobMaster: restarts', () => {
  const failWith = (workers: FakeWorker[], e: EddyError) =>
    workers[0]!.emit({ type: 'failed', error: serializeError(e) });

  it('never restarts a failure that is not retriable, and says why', async () => {
    const m = master({}, { restart: { kind: 'fixed-delay', attempts: 3, delayMs: 0 } });
    const { run, workers } = await started(m);
    failWith(
      workers,
      new EddyError('EDDY_BAD_RECORD', 'malformed record in a.jsonl at line 3', {
        domain: 'user',
        retriable: false,
      }),
    );
    const e = await run!.then(
      () => undefined,
      (x: unknown) => x as EddyError,
    );
    expect(e?.code).toBe('EDDY_BAD_RECORD');
    expect(e?.message).toMatch(
      /^malformed record in a\.jsonl at line 3 \(not restarted: EDDY_BAD_RECORD is not retriable/,
    );
    expect(pool.attempts).toHaveLength(1);
    expect(logs.some((l) => l.includes('restarting'))).toBe(false);
  });

  it('restarts a retriable failure until the attempts are used up, then names both', async () => {
    const m = master({}, { restart: { kind: 'fixed-delay', attempts: 1, delayMs: 0 } });
    const { run, workers } = await started(m);
    const io = () =>
      new EddyError('EDDY_SOURCE_IO', 'read a.jsonl: EIO', { domain: 'external', retriable: true });
    failWith(workers, io());
    const second = await started(m, 1);
    expect(second.attempt.restore).toBeUndefined();
    failWith(second.workers, io());
    await expect(run!).rejects.toThrow(
      'read a.jsonl: EIO (the job failed after 1 restart(s); not restarted: no restart attempts left (1 of 1 used))',
    );
    expect(logs.filter((l) => l.includes('restarting from the beginning'))).toHaveLength(1);
  });

  it('without checkpoints says that restarts need them', async () => {
    const m = master(false);
    const { run, workers } = await started(m);
    workers[1]!.crash(
      new EddyError('EDDY_WORKER_CRASHED', 'worker 1 exited with code 1', { retriable: true }),
    );
    await expect(run!).rejects.toThrow(
      'worker 1 exited with code 1 (not restarted: restarts need checkpoints, and this job has none)',
    );
  });
});

describe('JobMaster: injected faults at the master points', () => {
  const restart = { kind: 'fixed-delay', attempts: 1, delayMs: 0 } as const;

  it('before-metadata: the attempt fails, _metadata is never written, the checkpoint is gone', async () => {
    setFaults([{ point: 'before-metadata', action: 'throw' }]);
    const m = master({}, { restart });
    const { workers } = await started(m);
    const sp = m.savepoint(join(tmp, 'sp'));
    sp.catch(() => {});
    const cp = await workers[0]!.next('checkpoint');
    for (const w of workers) w.ack(cp.checkpointId);
    const second = await pool.attempt(1);
    expect(second.restore).toBeUndefined();
    await expect(sp).rejects.toThrow(/savepoint 1 failed: injected fault at before-metadata/);
    expect(await exists(cp.dir)).toBe(false);
    for (const w of workers) expect(w.sent('checkpointComplete')).toEqual([]);
  });

  it('after-metadata: the attempt fails, the checkpoint completes and is the restore point', async () => {
    setFaults([{ point: 'after-metadata', action: 'throw' }]);
    const m = master({}, { restart });
    const { workers } = await started(m);
    for (const w of workers) w.emit({ type: 'finished', reports: [] });
    const cp = await workers[0]!.next('checkpoint');
    for (const w of workers) w.ack(cp.checkpointId);
    const second = await pool.attempt(1);
    expect(second.restore?.dir).toBe(cp.dir);
    for (const w of workers) expect(w.sent('checkpointComplete')).toEqual([]);
    expect(logs.some((l) => l.includes('job failed: injected fault at after-metadata'))).toBe(true);
  });

  it('abort-checkpoint: the master aborts the checkpoint at its first ack; the job goes on', async () => {
    setFaults([{ point: 'abort-checkpoint', action: 'throw' }]);
    const m = master();
    const { run, workers } = await started(m);
    const sp = m.savepoint(join(tmp, 'sp'));
    await workers[0]!.next('checkpoint');
    workers[1]!.ack(1);
    await expect(sp).rejects.toThrow('savepoint 1 failed: aborted by an injected fault');
    for (const w of workers) expect(w.sent('checkpointAborted')).toHaveLength(1);
    workers[0]!.ack(1);
    await finish(workers, 2);
    await run;
    expect(pool.attempts).toHaveLength(1);
  });
});
