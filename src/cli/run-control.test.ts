import { describe, expect, it } from 'vitest';
import { JobMonitor } from '../server/monitor.js';
import { testGraph, testMetadata } from '../server/server.testkit.js';
import { rescalePlan, runHooks } from './run-control.js';

type Plan = {
  checkpointId: number;
  operators: Array<{ uid: string; plan?: { parallelism: number } }>;
};

const monitor = (withSnapshot = true) => {
  const m = new JobMonitor('job-1', 'test-job');
  m.setGraph(testGraph(3)); // running at 3, the snapshot was taken at 2
  if (withSnapshot) m.setRestored('/chk-7', testMetadata(7, 2));
  return m;
};

const parallelisms = (plan: unknown) =>
  Object.fromEntries((plan as Plan).operators.map((o) => [o.uid, o.plan?.parallelism]));

describe('rescalePlan', () => {
  it('plans every operator at N, or one operator with the others as they run now', async () => {
    const m = monitor();
    expect(parallelisms(await rescalePlan(m, 4, {}))).toEqual({ events: 4, sum: 4, out: 4 });
    expect(parallelisms(await rescalePlan(m, undefined, { sum: 4 }))).toEqual({
      events: 3,
      sum: 4,
      out: 3,
    });
    expect(parallelisms(await rescalePlan(m, 1, { sum: 4 }))).toEqual({
      events: 1,
      sum: 4,
      out: 1,
    });
    expect(((await rescalePlan(m, 2, {})) as Plan).checkpointId).toBe(7);
  });

  it('refuses unknown uids (400) and answers 409 before any snapshot', async () => {
    await expect(rescalePlan(monitor(), 2, { nope: 2 })).rejects.toMatchObject({
      code: 'EDDY_INVALID_ARGUMENT',
      message: expect.stringMatching(/'nope'.*events, sum, out/),
    });
    await expect(rescalePlan(monitor(), 9, {})).rejects.toMatchObject({
      code: 'EDDY_INVALID_PARALLELISM',
    });
    await expect(rescalePlan(monitor(false), 2, {})).rejects.toMatchObject({
      code: 'EDDY_JOB_CONTROL',
      message: expect.stringMatching(/no completed checkpoint/),
    });
  });
});

describe('runHooks', () => {
  it('refuses a non-loopback --ui-host without a token before anything starts', () => {
    expect(() => runHooks(2, { enabled: true, host: '0.0.0.0' })).toThrow(/EDDY_UI_TOKEN/);
    expect(() => runHooks(2, { enabled: true, host: '0.0.0.0', token: 't' })).not.toThrow();
    expect(() => runHooks(2, { enabled: false, host: '0.0.0.0' })).not.toThrow();
    expect(() => runHooks(2, { enabled: true })).not.toThrow();
    expect(() => runHooks(2, { enabled: true, port: 70000 })).toThrow(/--ui-port must be 0/);
  });
});
