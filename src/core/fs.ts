/**
 * File-system helpers shared by the layers that create local directories.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `mkdir -p`, by hand. Hazard: Node 20's `mkdirSync(path, { recursive: true })` never returns
 * for some paths under `/proc` (measured 2026-11-26), so a bad directory option would hang
 * the process instead of failing it.
 * @throws the `mkdir` error; ENOTDIR if `path` (or a parent) exists and is not a directory.
 */
export const makeDirs = (path: string): void => {
  try {
    mkdirSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (statSync(path).isDirectory()) return;
      throw Object.assign(new Error(`${path} exists and is not a directory`), { code: 'ENOTDIR' });
    }
    if (code !== 'ENOENT' || dirname(path) === path) throw e;
    makeDirs(dirname(path));
    mkdirSync(path);
  }
};
