import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EddyError } from '../core/errors.js';
import { type FaultSpec, faultPoint, InjectedFault, setFaults } from './faults.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-faults-'));

/** The fault module as a fresh thread sees it, with `EDDY_FAULTS` set to `value`. */
const importWithEnv = async (value: string | undefined) => {
  vi.resetModules();
  vi.stubEnv('EDDY_FAULTS', value);
  return import('./faults.js');
};

/** Calls `faultPoint` and says what happened: 'none', 'abort' (true) or the thrown error. */
const reach = (...args: Parameters<typeof faultPoint>): 'none' | 'abort' | unknown => {
  try {
    return faultPoint(...args) ? 'abort' : 'none';
  } catch (e) {
    return e;
  }
};

afterEach(() => {
  setFaults([]);
  vi.unstubAllEnvs();
});

describe('faultPoint', () => {
  it('is off without faults: every point returns false', () => {
    for (const p of [
      'alignment',
      'snapshot-async',
      'before-metadata',
      'after-metadata',
      'commit-notify',
      'abort-checkpoint',
    ] as const) {
      expect(faultPoint(p, 'here', 0)).toBe(false);
    }
  });

  it('a throw is an InjectedFault: retriable, external, naming the point and the place', () => {
    setFaults([{ point: 'alignment', action: 'throw' }]);
    const e = reach('alignment', 'checkpoint 4, subtask sum 1/2', 1);
    expect(e).toBeInstanceOf(InjectedFault);
    expect(e).toBeInstanceOf(EddyError);
    const f = e as InjectedFault;
    expect(f.retriable).toBe(true);
    expect(f.domain).toBe('external');
    expect(f.message).toBe('injected fault at alignment (checkpoint 4, subtask sum 1/2)');
  });

  it('fires on the n-th time the point is reached (default the 1st), once', () => {
    setFaults([{ point: 'before-metadata', action: 'throw', hit: 3 }]);
    expect(reach('before-metadata', 'a')).toBe('none');
    expect(reach('before-metadata', 'b')).toBe('none');
    expect(reach('before-metadata', 'c')).toBeInstanceOf(InjectedFault);
    expect(reach('before-metadata', 'd')).toBe('none');
    setFaults([{ point: 'after-metadata', action: 'throw' }]);
    expect(reach('after-metadata', 'a')).toBeInstanceOf(InjectedFault);
    expect(reach('after-metadata', 'b')).toBe('none');
  });

  it('counts each point on its own', () => {
    setFaults([{ point: 'commit-notify', action: 'throw', hit: 2 }]);
    expect(reach('snapshot-async', 'x')).toBe('none');
    expect(reach('alignment', 'x')).toBe('none');
    expect(reach('commit-notify', 'x')).toBe('none');
    expect(reach('snapshot-async', 'x')).toBe('none');
    expect(reach('commit-notify', 'x')).toBeInstanceOf(InjectedFault);
  });

  it('several faults at one point fire on their own hits', () => {
    setFaults([
      { point: 'snapshot-async', action: 'throw', hit: 2 },
      { point: 'snapshot-async', action: 'throw', hit: 4 },
    ]);
    expect(['a', 'b', 'c', 'd', 'e'].map((w) => reach('snapshot-async', w))).toEqual([
      'none',
      expect.any(InjectedFault),
      'none',
      expect.any(InjectedFault),
      'none',
    ]);
  });

  it('setFaults resets the hit counts (a new thread counts from 1)', () => {
    setFaults([{ point: 'alignment', action: 'throw', hit: 2 }]);
    expect(reach('alignment', 'a')).toBe('none');
    setFaults([{ point: 'alignment', action: 'throw', hit: 2 }]);
    expect(reach('alignment', 'a')).toBe('none');
    expect(reach('alignment', 'b')).toBeInstanceOf(InjectedFault);
  });

  it('a worker filter fires only in that worker; callers without a worker (the master) are not filtered', () => {
    const spec: FaultSpec = { point: 'commit-notify', action: 'throw', worker: 1 };
    setFaults([spec]);
    expect(reach('commit-notify', 'w0', 0)).toBe('none');
    setFaults([spec]);
    expect(reach('commit-notify', 'w1', 1)).toBeInstanceOf(InjectedFault);
    setFaults([spec]);
    expect(reach('commit-notify', 'master')).toBeInstanceOf(InjectedFault);
  });

  it('the hit counts every time the point is reached, whatever the worker filter', () => {
    // In one thread, hit 2 with worker 1: the 2nd reach, and only if it is worker 1's.
    setFaults([{ point: 'snapshot-async', action: 'throw', worker: 1, hit: 2 }]);
    expect(reach('snapshot-async', 'a', 1)).toBe('none');
    expect(reach('snapshot-async', 'b', 0)).toBe('none');
    expect(reach('snapshot-async', 'c', 1)).toBe('none');
    setFaults([{ point: 'snapshot-async', action: 'throw', worker: 1, hit: 2 }]);
    expect(reach('snapshot-async', 'a', 1)).toBe('none');
    expect(reach('snapshot-async', 'b', 1)).toBeInstanceOf(InjectedFault);
  });

  it('with a marker a fault fires once across threads and processes: the marker file decides', () => {
    const dir = tmp();
    const marker = join(dir, 'fired');
    const spec: FaultSpec = { point: 'alignment', action: 'throw', marker };
    setFaults([spec]);
    expect(existsSync(marker)).toBe(false);
    expect(reach('alignment', 'first', 0)).toBeInstanceOf(InjectedFault);
    expect(existsSync(marker)).toBe(true);
    // Another thread (fresh counts, same spec) reaching the same hit: the marker is taken.
    setFaults([spec]);
    expect(reach('alignment', 'second', 1)).toBe('none');

    // A marker that exists beforehand (created by another process) keeps the fault off.
    const other = join(dir, 'other');
    writeFileSync(other, '');
    setFaults([{ point: 'commit-notify', action: 'throw', marker: other }]);
    expect(reach('commit-notify', 'x')).toBe('none');
  });

  it('a fault whose marker is taken lets a later fault at the same point and hit fire', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'a'), '');
    setFaults([
      { point: 'after-metadata', action: 'throw', marker: join(dir, 'a') },
      { point: 'after-metadata', action: 'throw', marker: join(dir, 'b') },
    ]);
    expect(reach('after-metadata', 'x')).toBeInstanceOf(InjectedFault);
    expect(existsSync(join(dir, 'b'))).toBe(true);
  });

  it('abort-checkpoint returns true instead of throwing, on its hit only', () => {
    setFaults([{ point: 'abort-checkpoint', action: 'throw', hit: 2 }]);
    expect(reach('abort-checkpoint', 'checkpoint 1')).toBe('none');
    expect(reach('abort-checkpoint', 'checkpoint 2')).toBe('abort');
    expect(reach('abort-checkpoint', 'checkpoint 3')).toBe('none');
    const marker = join(tmp(), 'abort');
    setFaults([{ point: 'abort-checkpoint', action: 'throw', marker }]);
    expect(faultPoint('abort-checkpoint', 'checkpoint 1')).toBe(true);
    expect(existsSync(marker)).toBe(true);
    setFaults([{ point: 'abort-checkpoint', action: 'throw', marker }]);
    expect(faultPoint('abort-checkpoint', 'checkpoint 1')).toBe(false);
  });
});

describe('EDDY_FAULTS', () => {
  it('is parsed when the module loads (each worker thread and process loads it)', async () => {
    const m = await importWithEnv(
      JSON.stringify([{ point: 'snapshot-async', action: 'throw', hit: 2, worker: 0 }]),
    );
    expect(m.faultPoint('snapshot-async', 'a', 0)).toBe(false);
    expect(() => m.faultPoint('snapshot-async', 'b', 0)).toThrow(
      /injected fault at snapshot-async \(b\)/,
    );
  });

  it('unset or empty: no faults', async () => {
    for (const value of [undefined, '', '[]']) {
      const m = await importWithEnv(value);
      expect(m.faultPoint('alignment', 'x', 0)).toBe(false);
    }
  });

  it('JSON that is not an array: no faults', async () => {
    const m = await importWithEnv('{"point":"alignment","action":"throw"}');
    expect(m.faultPoint('alignment', 'x', 0)).toBe(false);
  });

  it('not JSON: loading fails with EDDY_INVALID_ARGUMENT naming the text', async () => {
    const err = await importWithEnv('[{point: alignment}]').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as EddyError).code).toBe('EDDY_INVALID_ARGUMENT');
    expect((err as Error).message).toContain(
      'EDDY_FAULTS is not a JSON array: [{point: alignment}]',
    );
  });
});
