import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobRegistry } from '../control/registry.js';
import { type JobControlSession, openJobControlSession } from '../control/session.js';
import { deadPid, entry, fakeTarget, tempHome } from '../control/testing.js';
import { EddyError } from '../core/errors.js';
import { savepointCommand, stopCommand } from './control.js';
import { formatJobTable, listCommand } from './list.js';

let home: string;
let cleanup: () => void;
let session: JobControlSession | undefined;
beforeEach(() => {
  ({ home, cleanup } = tempHome());
});
afterEach(async () => {
  await session?.end('stopped');
  session = undefined;
  cleanup();
});

const ID = 'c0ffee00-aaaa-bbbb-cccc-000000000001';
const openSession = async (target = fakeTarget().target) => {
  session = await openJobControlSession({ home, id: ID, name: 'wc', parallelism: 2, target });
  return session;
};

const capture = () => {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { home, out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) },
  };
};

const codeOf = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(EddyError);
  return e as EddyError;
};

/** Runs the real CLI with EDDY_HOME set; resolves with its exit code and output. */
const eddy = (...args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, [resolve('bin/eddy.mjs'), ...args], {
      env: { ...process.env, EDDY_HOME: home },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });

describe('eddy list', () => {
  it('prints a table with short ids, and full entries as JSON', async () => {
    const registry = new JobRegistry(home);
    registry.register(entry('0123456789abcdef', { name: 'sessions', status: 'stopped' }));
    const out: string[] = [];
    await listCommand({ home, write: (t) => void out.push(t) });
    expect(out.join('').split('\n')).toEqual([
      'ID            NAME      STATUS   PARALLELISM  STARTED               URL',
      '0123456789ab  sessions  stopped  2            2025-01-01T00:00:00Z  -',
      '',
    ]);
    out.length = 0;
    await listCommand({ home, json: true, write: (t) => void out.push(t) });
    expect(JSON.parse(out.join(''))).toEqual([
      entry('0123456789abcdef', { name: 'sessions', status: 'stopped' }),
    ]);
  });

  it('says where it looked when there are no jobs', async () => {
    const out: string[] = [];
    await listCommand({ home, write: (t) => void out.push(t) });
    expect(out.join('')).toContain(`no jobs in ${home}`);
  });

  it('formats columns to the widest cell', () => {
    const table = formatJobTable([
      entry('a', { name: 'a-rather-long-name', status: 'running', url: 'http://127.0.0.1:8081' }),
    ]);
    expect(table).toMatch(/^ID {2}NAME {16}STATUS {3}PARALLELISM {2}STARTED {15}URL\n/);
    expect(table).toMatch(/ {2}http:\/\/127\.0\.0\.1:8081\n$/);
  });
});

describe('eddy savepoint / stop', () => {
  it('prints the savepoint path as the last line, resolving a relative --dir here', async () => {
    const { target, calls } = fakeTarget();
    await openSession(target);
    const { out, err, io } = capture();
    expect(await savepointCommand('c0ffee', { dir: 'sp' }, io)).toBe(0);
    expect(calls).toEqual([['savepoint', resolve('sp')]]);
    expect(out).toEqual([`${resolve('sp', 'savepoint-1')}\n`]);
    expect(err.join('')).toContain(`job ${ID} (wc)`);
  });

  it('lets the job choose the directory when --dir is absent', async () => {
    const { target, calls } = fakeTarget();
    await openSession(target);
    const { out, io } = capture();
    await stopCommand('c0ffee', { savepoint: true }, io);
    expect(calls).toEqual([['stop', true, undefined]]);
    expect(out.at(-1)).toBe('/default/savepoint-final\n');
  });

  it('stops without a savepoint, printing nothing on stdout', async () => {
    const { target, calls } = fakeTarget();
    await openSession(target);
    const { out, err, io } = capture();
    expect(await stopCommand(ID, {}, io)).toBe(0);
    expect(calls).toEqual([['stop', false, undefined]]);
    expect(out).toEqual([]);
    expect(err.at(-1)).toContain('stopped job');
  });

  it('stop --drain asks the job to drain; a stop without it does not', async () => {
    const { target } = fakeTarget();
    const drains: boolean[] = [];
    await openSession({
      ...target,
      stop: (savepoint, dir, drain) => {
        drains.push(drain);
        return target.stop(savepoint, dir, drain);
      },
    });
    const { out, err, io } = capture();
    expect(await stopCommand(ID, { drain: true }, io)).toBe(0);
    expect(err[0]).toContain('ending its input and firing every window and timer');
    await stopCommand(ID, { savepoint: true, dir: '/sp' }, io);
    expect(err.at(-1)).toContain('its sources stop where they are');
    expect(drains).toEqual([true, false]);
    expect(out).toEqual(['/sp/savepoint-final\n']);
  });

  it('refuses crashed and ended jobs with a clear error', async () => {
    const registry = new JobRegistry(home);
    registry.register(entry('dead0001', { status: 'running', pid: await deadPid() }));
    registry.register(entry('done0001', { status: 'finished', endedAt: '2025-01-02T00:00:00Z' }));
    const { io } = capture();
    const crashed = await codeOf(savepointCommand('dead', {}, io));
    expect(crashed.code).toBe('EDDY_JOB_CONTROL');
    expect(crashed.message).toContain(
      'job dead0001 (job-dead) is not reachable (probably crashed)',
    );
    const done = await codeOf(stopCommand('done', { savepoint: true }, io));
    expect(done.message).toContain('is not running: it finished at 2025-01-02T00:00:00Z');
    expect((await codeOf(stopCommand('done', { dir: '/x' }, io))).message).toContain(
      '--dir needs --savepoint',
    );
  });
});

describe('eddy CLI (spawned)', () => {
  it('documents stop --drain and run --checkpoint-timeout, and checks the timeout', async () => {
    expect((await eddy('stop', '--help')).stdout).toMatch(/--drain +end the input first/);
    expect((await eddy('run', '--help')).stdout).toContain('--checkpoint-timeout <ms>');
    const bad = await eddy('run', 'job.ts', '--checkpoint-timeout', '0');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--checkpoint-timeout must be an integer >= 1');
  });

  it('list --json reports a job whose process died as crashed', async () => {
    new JobRegistry(home).register(entry('dead0002', { status: 'running', pid: await deadPid() }));
    const r = await eddy('list', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      expect.objectContaining({ id: 'dead0002', status: 'crashed' }),
    ]);
  });

  it('stop --savepoint prints the path last; errors exit 1 with their code', async () => {
    const { target } = fakeTarget();
    const drains: boolean[] = [];
    await openSession({
      ...target,
      stop: (savepoint, dir, drain) => {
        drains.push(drain);
        return target.stop(savepoint, dir, drain);
      },
    });
    const r = await eddy('stop', 'c0ffee', '--savepoint', '--dir', '/tmp/sp');
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('/tmp/sp/savepoint-final');
    const drained = await eddy('stop', 'c0ffee', '--drain', '--savepoint', '--dir', '/tmp/sp');
    expect(drained.code).toBe(0);
    expect(drains).toEqual([false, true]);
    const unknown = await eddy('savepoint', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("eddy: error [EDDY_JOB_CONTROL]: no job with id 'nope'");
  });
});
