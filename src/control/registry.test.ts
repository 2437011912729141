import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { eddyHome, socketPathFor } from './paths.js';
import { JobRegistry } from './registry.js';
import { startControlServer } from './server.js';
import { deadPid, entry, fakeTarget, tempHome } from './testing.js';

let home: string;
let cleanup: () => void;
beforeEach(() => {
  ({ home, cleanup } = tempHome());
});
afterEach(() => cleanup());

const codeOf = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(EddyError);
  return e as EddyError;
};

describe('eddyHome', () => {
  it('is $EDDY_HOME when set, else ~/.eddy', () => {
    expect(eddyHome({ EDDY_HOME: '/tmp/somewhere' })).toBe('/tmp/somewhere');
    expect(eddyHome({})).toMatch(/[/\\]\.eddy$/);
  });
});

describe('JobRegistry', () => {
  it('round-trips entries and merges updates', async () => {
    const registry = new JobRegistry(home);
    expect(await registry.list()).toEqual([]);
    const e = entry('aaaa1111-2222', { checkpointDir: '/ckpt' });
    registry.register(e);
    expect(await registry.list()).toEqual([e]);
    const next = registry.update(e.id, {
      status: 'stopped',
      endedAt: '2025-01-01T01:00:00.000Z',
      lastSavepoint: '/sp/1',
    });
    expect(next).toEqual({
      ...e,
      status: 'stopped',
      endedAt: next.endedAt,
      lastSavepoint: '/sp/1',
    });
    expect(await registry.get(e.id)).toEqual(next);
    registry.remove(e.id);
    expect(await registry.list()).toEqual([]);
  });

  it('lists oldest first', async () => {
    const registry = new JobRegistry(home);
    registry.register(entry('bbbb', { startedAt: '2025-02-01T00:00:00.000Z' }));
    registry.register(entry('aaaa', { startedAt: '2025-03-01T00:00:00.000Z' }));
    registry.register(entry('cccc', { startedAt: '2025-01-01T00:00:00.000Z' }));
    expect((await registry.list()).map((j) => j.id)).toEqual(['cccc', 'bbbb', 'aaaa']);
  });

  it('writes by rename (a new file each time) and leaves no temporaries', () => {
    const registry = new JobRegistry(home);
    registry.register(entry('aaaa'));
    const file = join(registry.dir, 'aaaa.json');
    const before = statSync(file).ino;
    registry.update('aaaa', { status: 'failed' });
    expect(statSync(file).ino).not.toBe(before);
    expect(readdirSync(registry.dir)).toEqual(['aaaa.json']);
  });

  it('ignores temporaries left by a crash mid-write, and unparsable files', async () => {
    const registry = new JobRegistry(home);
    registry.register(entry('aaaa'));
    writeFileSync(join(registry.dir, '.bbbb.123.ab12cd34.tmp'), '{"id":"bb');
    writeFileSync(join(registry.dir, 'cccc.json'), '{"id":"cc');
    writeFileSync(join(registry.dir, 'dddd.json'), '{"id":"not-dddd"}');
    expect((await registry.list()).map((j) => j.id)).toEqual(['aaaa']);
  });

  it('lists a running job whose process is gone as crashed', async () => {
    const registry = new JobRegistry(home);
    registry.register(entry('dead', { status: 'running', pid: await deadPid() }));
    registry.register(entry('gone', { status: 'stopping', pid: await deadPid() }));
    const listed = await registry.list();
    expect(listed.map((j) => j.status)).toEqual(['crashed', 'crashed']);
    expect((await registry.get('dead')).status).toBe('crashed');
  });

  it('lists a live process whose socket refuses connections as crashed', async () => {
    // process.pid is alive: stands in for a reused pid or a job whose server died.
    const registry = new JobRegistry(home);
    const socket = join(home, 'stale.sock');
    writeFileSync(socket, ''); // a file nobody listens on, like a crashed job's socket
    registry.register(entry('stale', { status: 'running', socket }));
    registry.register(entry('nosock', { status: 'running', socket: join(home, 'missing.sock') }));
    expect((await registry.list()).map((j) => j.status)).toEqual(['crashed', 'crashed']);
  });

  it('lists a live process with an answering socket as running', async () => {
    const registry = new JobRegistry(home);
    const socket = socketPathFor(home, 'live-job-id-0000');
    const server = await startControlServer(socket, fakeTarget().target);
    try {
      registry.register(entry('live-job-id-0000', { status: 'running', socket }));
      expect((await registry.get('live')).status).toBe('running');
    } finally {
      await server.close();
    }
  });

  it('finds a job by unique prefix; an exact id wins over longer ids', async () => {
    const registry = new JobRegistry(home);
    registry.register(entry('abc123'));
    registry.register(entry('abd456'));
    registry.register(entry('abc'));
    expect((await registry.get('abd')).id).toBe('abd456');
    expect((await registry.get('abc1')).id).toBe('abc123');
    expect((await registry.get('abc')).id).toBe('abc');
  });

  it('says which ids an ambiguous prefix matches, and names unknown ids', async () => {
    const registry = new JobRegistry(home);
    registry.register(entry('abc123'));
    registry.register(entry('abd456'));
    const ambiguous = await codeOf(registry.get('ab'));
    expect(ambiguous.code).toBe('EDDY_JOB_CONTROL');
    expect(ambiguous.message).toContain('ambiguous');
    expect(ambiguous.message).toContain('abc123, abd456');
    const unknown = await codeOf(registry.get('zz'));
    expect(unknown.code).toBe('EDDY_JOB_CONTROL');
    expect(unknown.message).toContain("no job with id 'zz'");
    expect((await codeOf(registry.get(''))).code).toBe('EDDY_JOB_CONTROL');
    expect(() => registry.update('nope', { status: 'failed' })).toThrow(/no job with id 'nope'/);
  });

  it('refuses ids that are not plain file names', () => {
    const registry = new JobRegistry(home);
    expect(() => registry.register(entry('../evil'))).toThrow(/may only contain/);
    expect(() => registry.register(entry('.hidden'))).toThrow(/may only contain/);
  });

  it('prunes ended and crashed jobs older than the threshold, never live ones', async () => {
    const registry = new JobRegistry(home);
    const hours = (n: number) => n * 3600_000;
    const now = Date.parse('2025-01-10T00:00:00.000Z');
    registry.register(entry('old', { status: 'finished', endedAt: '2025-01-01T00:00:00.000Z' }));
    registry.register(entry('new', { status: 'stopped', endedAt: '2025-01-09T23:00:00.000Z' }));
    registry.register(entry('crash', { status: 'running', pid: await deadPid() }));
    const socket = socketPathFor(home, 'live');
    const server = await startControlServer(socket, fakeTarget().target);
    try {
      registry.register(entry('live', { status: 'running', socket }));
      // A crashed job's age counts from its entry's last write: real time, after `now`.
      expect(await registry.prune({ olderThanMs: hours(2), now })).toEqual(['old']);
      const later = Date.now() + hours(3);
      const removed = await registry.prune({ olderThanMs: hours(2), now: later });
      expect(removed.sort()).toEqual(['crash', 'new']);
      expect((await registry.list()).map((j) => j.id)).toEqual(['live']);
    } finally {
      await server.close();
    }
  });
});
