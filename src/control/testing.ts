/** Test support for job control: temporary homes and a scriptable fake job. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobControlTarget, JobEntry, JobStatusInfo } from './types.js';

/** A fresh EDDY_HOME; short on purpose, since socket paths live under it. */
export const tempHome = (): { home: string; cleanup: () => void } => {
  const home = mkdtempSync(join(tmpdir(), 'eddy-'));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
};

/** The pid of a process that has exited (and been reaped). */
export const deadPid = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(child.pid!));
  });

export const entry = (id: string, overrides: Partial<JobEntry> = {}): JobEntry => ({
  id,
  name: `job-${id.slice(0, 4)}`,
  pid: process.pid,
  status: 'finished',
  parallelism: 2,
  startedAt: '2025-01-01T00:00:00.000Z',
  socket: `/nonexistent/${id}.sock`,
  ...overrides,
});

/** A promise with its resolve/reject exposed. */
export const deferred = <T>() => {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** A fake job whose answers the test scripts; records the calls it got. */
export const fakeTarget = (overrides: Partial<JobControlTarget> = {}) => {
  const calls: unknown[][] = [];
  const status: JobStatusInfo = {
    id: 'job-1',
    name: 'fake',
    status: 'running',
    parallelism: 3,
    startedAt: '2025-01-01T00:00:00.000Z',
  };
  const target: JobControlTarget = {
    status: () => status,
    savepoint: async (dir) => {
      calls.push(['savepoint', dir]);
      return join(dir ?? '/default', 'savepoint-1');
    },
    stop: async (savepoint, dir) => {
      calls.push(['stop', savepoint, dir]);
      return savepoint ? join(dir ?? '/default', 'savepoint-final') : undefined;
    },
    rescale: async (parallelism, operators) => {
      calls.push(['rescale', parallelism, operators]);
      return {
        savepoint: '/default/savepoint-rescale',
        fromParallelism: status.parallelism,
        toParallelism: parallelism ?? status.parallelism,
        operators,
        pauseMs: 1,
        prepareMs: 0,
        bytesRead: 0,
        keyGroups: 0,
        restoreMs: 0,
      };
    },
    ...overrides,
  };
  return { target, calls };
};
