import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sendControl } from './client.js';
import { JobRegistry } from './registry.js';
import { openJobControlSession } from './session.js';
import { fakeTarget, tempHome } from './testing.js';

let home: string;
let cleanup: () => void;
beforeEach(() => {
  ({ home, cleanup } = tempHome());
});
afterEach(() => cleanup());

describe('openJobControlSession', () => {
  it('registers a reachable running job, then records how it ended', async () => {
    const registry = new JobRegistry(home);
    const session = await openJobControlSession({
      home,
      id: 'f00dfeed-1234-5678',
      name: 'wc',
      parallelism: 4,
      checkpointDir: '/ckpt',
      target: fakeTarget().target,
    });
    const [listed] = await registry.list();
    expect(listed).toMatchObject({ id: 'f00dfeed-1234-5678', status: 'running', pid: process.pid });
    expect((await sendControl(listed!.socket, { op: 'savepoint' })).path).toBe(
      '/default/savepoint-1',
    );
    session.update({ status: 'stopping', lastSavepoint: '/default/savepoint-1' });
    expect((await registry.get('f00d')).status).toBe('stopping');
    await session.end('stopped', { lastSavepoint: '/sp/final' });
    await session.end('failed'); // idempotent: the first end wins
    const ended = await registry.get('f00d');
    expect(ended).toMatchObject({ status: 'stopped', lastSavepoint: '/sp/final' });
    expect(ended.endedAt).toEqual(expect.any(String));
    expect(existsSync(listed!.socket)).toBe(false);
  });
});
