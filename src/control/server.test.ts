import { existsSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { sendControl } from './client.js';
import { socketPathFor } from './paths.js';
import { type ControlServer, startControlServer } from './server.js';
import { deferred, fakeTarget, tempHome } from './testing.js';

let home: string;
let cleanup: () => void;
let socket: string;
const servers: ControlServer[] = [];
beforeEach(() => {
  ({ home, cleanup } = tempHome());
  socket = socketPathFor(home, '0123456789abcdef-long-job-id');
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  cleanup();
});

const start = async (target = fakeTarget().target, path = socket) => {
  const server = await startControlServer(path, target);
  servers.push(server);
  return server;
};

const rejection = async (p: Promise<unknown>): Promise<EddyError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(EddyError);
  return e as EddyError;
};

/** Sends raw lines and collects response lines until `count` arrived. */
const rawExchange = (path: string, text: string, count: number) =>
  new Promise<string[]>((resolve, reject) => {
    const s = createConnection(path);
    let got = '';
    s.setEncoding('utf8');
    s.on('error', reject);
    s.on('connect', () => s.write(text));
    s.on('data', (chunk: string) => {
      got += chunk;
      const lines = got.split('\n').filter((l) => l !== '');
      if (lines.length >= count) {
        s.destroy();
        resolve(lines);
      }
    });
  });

describe('control server and client', () => {
  it('names the socket after the first 12 characters of the job id', () => {
    expect(socket).toBe(join(home, 'run', '0123456789ab.sock'));
  });

  it('answers status', async () => {
    await start();
    const r = await sendControl(socket, { op: 'status' });
    expect(r).toEqual({
      ok: true,
      status: expect.objectContaining({ name: 'fake', parallelism: 3 }),
    });
  });

  it('takes a savepoint and returns its path', async () => {
    const { target, calls } = fakeTarget();
    await start(target);
    expect((await sendControl(socket, { op: 'savepoint', dir: '/sp' })).path).toBe(
      '/sp/savepoint-1',
    );
    expect((await sendControl(socket, { op: 'savepoint' })).path).toBe('/default/savepoint-1');
    expect(calls).toEqual([
      ['savepoint', '/sp'],
      ['savepoint', undefined],
    ]);
  });

  it('answers stop only once the job has stopped', async () => {
    const stopped = deferred<string | undefined>();
    const called = deferred<void>();
    await start(
      fakeTarget({
        stop: (savepoint, dir, drain) => {
          expect([savepoint, dir, drain]).toEqual([true, '/sp', false]);
          called.resolve();
          return stopped.promise;
        },
      }).target,
    );
    let answered = false;
    const reply = sendControl(socket, {
      op: 'stop',
      savepoint: true,
      dir: '/sp',
      drain: false,
    }).then((r) => {
      answered = true;
      return r;
    });
    await called.promise;
    // A status request on another connection is answered while the stop is pending.
    expect((await sendControl(socket, { op: 'status' })).ok).toBe(true);
    expect(answered).toBe(false);
    stopped.resolve('/sp/final');
    expect(await reply).toEqual({ ok: true, path: '/sp/final' });
  });

  it('answers stop without a savepoint with no path', async () => {
    await start();
    expect(await sendControl(socket, { op: 'stop', savepoint: false, drain: false })).toEqual({
      ok: true,
    });
  });

  it('passes drain through; a request without it (an older client) does not drain', async () => {
    const { target, calls } = fakeTarget();
    const drains: boolean[] = [];
    await start({
      ...target,
      stop: (savepoint, dir, drain) => {
        drains.push(drain);
        return target.stop(savepoint, dir, drain);
      },
    });
    await sendControl(socket, { op: 'stop', savepoint: false, drain: true });
    await rawExchange(socket, '{"op":"stop","savepoint":false}\n', 1);
    await rawExchange(socket, '{"op":"stop","savepoint":false,"drain":"yes"}\n', 1);
    expect(drains).toEqual([true, false, false]);
    expect(calls).toHaveLength(3);
  });

  it("sends the job's errors back with their code; the client throws them", async () => {
    await start(
      fakeTarget({
        savepoint: async () => {
          throw new EddyError('EDDY_CHECKPOINT_FAILED', 'savepoint 3 failed: disk full');
        },
        stop: async () => {
          throw new Error('plain error');
        },
      }).target,
    );
    const lines = await rawExchange(socket, '{"op":"savepoint"}\n', 1);
    expect(JSON.parse(lines[0]!)).toEqual({
      ok: false,
      code: 'EDDY_CHECKPOINT_FAILED',
      message: 'savepoint 3 failed: disk full',
    });
    const e = await rejection(sendControl(socket, { op: 'savepoint' }));
    expect(e.code).toBe('EDDY_CHECKPOINT_FAILED');
    expect(e.message).toBe('savepoint 3 failed: disk full');
    expect(
      (await rejection(sendControl(socket, { op: 'stop', savepoint: false, drain: false }))).code,
    ).toBe('EDDY_INTERNAL');
  });

  it('rejects malformed and unknown requests without dropping the connection', async () => {
    await start();
    const lines = await rawExchange(socket, 'not json\n{"op":"launch"}\n{"op":"status"}\n', 3);
    const [bad, unknown, ok] = lines.map((l) => JSON.parse(l));
    expect(bad).toMatchObject({ ok: false, code: 'EDDY_JOB_CONTROL' });
    expect(unknown).toMatchObject({ ok: false, code: 'EDDY_JOB_CONTROL' });
    expect(ok).toMatchObject({ ok: true });
  });

  it('reports a missing or dead socket as not reachable, naming the job', async () => {
    const missing = await rejection(sendControl(socket, { op: 'status' }, { job: 'job abc (wc)' }));
    expect(missing.code).toBe('EDDY_JOB_CONTROL');
    expect(missing.message).toContain('job abc (wc) is not reachable (probably crashed)');
    const stale = join(home, 'stale.sock');
    writeFileSync(stale, '');
    const refused = await rejection(sendControl(stale, { op: 'status' }, { job: 'job abc' }));
    expect(refused.code).toBe('EDDY_JOB_CONTROL');
    expect(refused.message).toContain('not reachable');
  });

  it('replaces a stale socket file but refuses to take over a live one', async () => {
    const first = await start();
    const e = await rejection(start());
    expect(e.code).toBe('EDDY_JOB_CONTROL');
    expect(e.message).toContain('in use');
    await first.close();
    expect(existsSync(socket)).toBe(false);
    writeFileSync(socket, ''); // as left by a crashed job
    await start();
    expect((await sendControl(socket, { op: 'status' })).ok).toBe(true);
  });

  it('refuses socket paths too long for Unix sockets', async () => {
    const e = await rejection(start(undefined, join(home, 'x'.repeat(120), 'a.sock')));
    expect(e.message).toMatch(/over the 103-byte limit.*EDDY_HOME/);
  });

  it('on close, answers a pending request with a failure instead of hanging', async () => {
    const called = deferred<void>();
    const server = await start(
      fakeTarget({
        savepoint: () => {
          called.resolve();
          return new Promise<string>(() => {});
        },
      }).target,
    );
    const reply = rejection(sendControl(socket, { op: 'savepoint' }));
    await called.promise;
    await server.close();
    const e = await reply;
    expect(e.code).toBe('EDDY_JOB_CONTROL');
    expect(e.message).toContain('ended before answering');
  });

  it('on close, still delivers an answer that is already settled', async () => {
    const stopped = deferred<string | undefined>();
    const called = deferred<void>();
    const server = await start(
      fakeTarget({
        stop: () => {
          called.resolve();
          return stopped.promise;
        },
      }).target,
    );
    const reply = sendControl(socket, { op: 'stop', savepoint: true, drain: false });
    await called.promise;
    // Resolve and close at once, as `eddy run` does when the stopped job's run ends.
    stopped.resolve('/sp/final');
    await server.close();
    expect(await reply).toEqual({ ok: true, path: '/sp/final' });
  });
});
