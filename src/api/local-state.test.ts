import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkLocalStateDir,
  openLocalRunDir,
  parseStateBackend,
  sweepLocalStateDir,
} from './local-state.js';

const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'eddy-local-state-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A pid no process has now: that of a child that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!;

describe('parseStateBackend', () => {
  it('accepts heap and disk, names the option otherwise', () => {
    expect(parseStateBackend('heap')).toBe('heap');
    expect(parseStateBackend('disk')).toBe('disk');
    expect(() => parseStateBackend('rocks', '--state-backend')).toThrow(
      "--state-backend must be one of 'heap', 'disk', got 'rocks'",
    );
  });
});

describe('checkLocalStateDir', () => {
  it('creates missing parents and leaves nothing behind', () => {
    const dir = join(temp(), 'a', 'b', 'c');
    expect(checkLocalStateDir(dir)).toBe(dir);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a regular file, or a path under one: a clear error naming the path and what set it', () => {
    const file = join(temp(), 'file');
    writeFileSync(file, 'x');
    expect(() => checkLocalStateDir(file, 'the local state directory (--local-state-dir)')).toThrow(
      `cannot use ${file} as the local state directory (--local-state-dir) for the disk state backend: creating the directory failed (ENOTDIR: ${file} exists and is not a directory)`,
    );
    expect(() => checkLocalStateDir(join(file, 'sub'))).toThrow(
      new RegExp(`cannot use ${join(file, 'sub')} .*creating the directory failed \\(ENOTDIR`),
    );
  });

  it.runIf(process.platform === 'linux')(
    'a directory nothing can be created in (as root too): /proc, /sys',
    () => {
      // Node's recursive mkdir never returns for a path under /proc: this must.
      expect(() => checkLocalStateDir('/proc/eddy-local')).toThrow(
        /cannot use \/proc\/eddy-local .*creating the directory failed \(ENOENT/,
      );
      // Exists, so only the write shows that it cannot be used.
      expect(() => checkLocalStateDir('/sys')).toThrow(
        /cannot use \/sys .*writing a file in it failed \((EACCES|EROFS|EPERM)/,
      );
    },
  );
});

describe('local run directories', () => {
  it("each run gets its own directory, removed at its end; a crashed run's is swept at the next start", () => {
    const base = temp();
    const dead = join(base, `eddy-run-${deadPid()}-0b7c3c3e-2f7f-4f39-9d1c-1a2b3c4d5e6f`);
    const orphan = join(base, `eddy-run-${process.pid}-00000000-0000-0000-0000-000000000000`);
    const alive = join(base, `eddy-run-1-11111111-1111-1111-1111-111111111111`);
    const foreign = join(base, 'not-eddy');
    for (const d of [dead, orphan, alive, foreign])
      mkdirSync(join(d, 'store'), { recursive: true });
    const a = openLocalRunDir(base);
    expect([...a.swept].sort()).toEqual([dead, orphan].sort());
    // Process 1 is alive; directories eddy did not create are never touched.
    expect(existsSync(alive) && existsSync(foreign)).toBe(true);
    const b = openLocalRunDir(base);
    // A run of this process still in use is not swept by another's start.
    expect(b.swept).toEqual([]);
    expect(existsSync(a.path) && existsSync(b.path) && a.path !== b.path).toBe(true);
    mkdirSync(join(a.path, 'store-1'));
    a.remove();
    b.remove();
    expect(readdirSync(base).sort()).toEqual([
      'eddy-run-1-11111111-1111-1111-1111-111111111111',
      'not-eddy',
    ]);
    expect(sweepLocalStateDir(join(base, 'missing'))).toEqual([]);
  });
});
