import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import {
  checkpointFields,
  classifyLine,
  JOB_LOG_EVENTS,
  JobLog,
  jobEndFields,
  jobLogPath,
} from './job-log.js';

const home = () => mkdtempSync(join(tmpdir(), 'eddy-joblog-'));
const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('JobLog', () => {
  it('writes events as JSON lines with level, time, event, jobId and the human line', async () => {
    const h = home();
    const log = await JobLog.open({ jobId: 'job-1', jobName: 'sums', home: h });
    expect(log.path).toBe(jobLogPath(h, 'job-1'));
    log.write('job job-1 (sums) started', { event: 'job-start', parallelism: 2 });
    log.write(
      'checkpoint 3 completed',
      checkpointFields({
        checkpointId: 3,
        dir: '/c/chk-3',
        savepoint: false,
        bytes: 1234,
        syncMs: 1.234,
        asyncMs: 5.6,
        totalMs: 9.7,
      }),
    );
    log.write('job failed: boom\nrestarting from checkpoint 3 in 200 ms (restart 1)');
    log.write(
      'finished in 1.00 s',
      jobEndFields({
        durationMs: 1000.4,
        stopped: false,
        totals: { recordsIn: 10, recordsOut: 9, deadLetters: 1 },
        restarts: 1,
        savepoint: undefined,
      }),
    );
    await log.close();
    const [start, chk, restart, end] = lines(log.path);
    for (const l of [start, chk, restart, end]) {
      expect(l).toMatchObject({ jobId: 'job-1', jobName: 'sums', pid: process.pid });
      expect(typeof l!.time).toBe('string');
      expect(Number.isNaN(Date.parse(l!.time as string))).toBe(false);
    }
    expect(start).toMatchObject({
      level: 'info',
      event: 'job-start',
      parallelism: 2,
      msg: 'job job-1 (sums) started',
    });
    expect(chk).toMatchObject({
      level: 'info',
      event: 'checkpoint',
      checkpointId: 3,
      bytes: 1234,
      ms: 10,
      syncMs: 1.2,
      asyncMs: 6,
      dir: '/c/chk-3',
    });
    expect(restart).toMatchObject({
      level: 'warn',
      event: 'restart',
      cause: 'boom',
      restart: 1,
      delayMs: 200,
      fromCheckpoint: 3,
    });
    expect(end).toMatchObject({
      event: 'job-end',
      status: 'finished',
      durationMs: 1000,
      recordsIn: 10,
      recordsOut: 9,
      deadLetters: 1,
      restarts: 1,
      savepoint: null,
    });
  });

  it('loses nothing buffered: close flushes every line, later writes are dropped', async () => {
    const h = home();
    const log = await JobLog.open({ jobId: 'many', jobName: 'j', home: h });
    for (let i = 0; i < 20_000; i++) log.write(`line ${i}`, { event: 'message', i });
    await log.close();
    log.write('after close', { event: 'message' });
    const all = lines(log.path);
    expect(all).toHaveLength(20_000);
    expect(all.at(-1)).toMatchObject({ i: 19_999 });
  });

  it('flushSync writes what is buffered at once (an exit path)', async () => {
    const h = home();
    const log = await JobLog.open({ jobId: 'sync', jobName: 'j', home: h });
    log.write('cancelled', { event: 'job-cancelled', lastCheckpoint: 4 });
    log.flushSync();
    expect(lines(log.path)).toEqual([
      expect.objectContaining({ event: 'job-cancelled', level: 'warn', lastCheckpoint: 4 }),
    ]);
    await log.close();
    log.flushSync(); // closed: a no-op, not a throw
  });

  it('failed() logs the error with its code and closes the log', async () => {
    const h = home();
    const log = await JobLog.open({ jobId: 'f', jobName: 'j', home: h });
    await log.failed(new EddyError('EDDY_SOURCE_IO', 'disk gone'));
    log.write('late', { event: 'message' });
    expect(lines(log.path)).toEqual([
      expect.objectContaining({
        level: 'error',
        event: 'job-failed',
        code: 'EDDY_SOURCE_IO',
        error: 'disk gone',
        msg: 'job failed: disk gone',
      }),
    ]);
  });

  it('a process.exit right after writing keeps the line (pino flushes on exit)', () => {
    const h = home();
    const script = join(h, 'exit.mts');
    const module = fileURLToPath(new URL('./job-log.ts', import.meta.url));
    writeFileSync(
      script,
      `import { JobLog } from ${JSON.stringify(module)};
const log = await JobLog.open({ jobId: 'exit', jobName: 'j', home: ${JSON.stringify(h)} });
for (let i = 0; i < 1000; i++) log.write('line ' + i, { event: 'message', i });
process.exit(130);
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(130);
    const all = lines(jobLogPath(h, 'exit'));
    expect(all).toHaveLength(1000);
    expect(all.at(-1)).toMatchObject({ i: 999 });
  });

  it('cannot open a log where no directory can be made: rejects', async () => {
    const h = home();
    writeFileSync(join(h, 'logs'), 'a file, not a directory');
    await expect(JobLog.open({ jobId: 'x', jobName: 'j', home: h })).rejects.toThrow();
  });
});

describe('classifyLine (the job master speaks in lines)', () => {
  it('recognizes restarts, checkpoint failures and skips; anything else is a message', () => {
    expect(
      classifyLine('job failed: a\nb\nrestarting from the beginning in 5 ms (restart 2)'),
    ).toEqual({ event: 'restart', cause: 'a\nb', restart: 2, delayMs: 5, fromCheckpoint: null });
    expect(classifyLine('savepoint 7 failed: declined by worker 1')).toEqual({
      event: 'checkpoint-failed',
      checkpointId: 7,
      savepoint: true,
      cause: 'declined by worker 1',
    });
    expect(classifyLine('internal error while committing checkpoint 2: oops')).toMatchObject({
      event: 'checkpoint-failed',
      checkpointId: 2,
    });
    expect(classifyLine('checkpoint 9 completed after its attempt failed; it is …')).toEqual({
      event: 'checkpoint-orphaned',
      checkpointId: 9,
      savepoint: false,
    });
    expect(classifyLine('skipping checkpoint /x/chk-3: no _metadata')).toEqual({
      event: 'checkpoint-skipped',
      dir: '/x/chk-3',
      cause: 'no _metadata',
    });
    expect(classifyLine('rescale refused, the job runs on unchanged: no such uid')).toEqual({
      event: 'rescale-refused',
      reason: 'no such uid',
    });
    expect(classifyLine('could not delete old checkpoints: EACCES')).toEqual({
      event: 'message',
    });
    // Every event classifyLine returns has a level.
    for (const e of ['restart', 'checkpoint-failed', 'rescale-refused', 'message']) {
      expect(JOB_LOG_EVENTS).toHaveProperty(e);
    }
  });
});
