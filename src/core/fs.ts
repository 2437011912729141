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
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      existingDir(path);
      return;
    }
    if (code !== 'ENOENT' || dirname(path) === path) throw e;
  }
  makeDirs(dirname(path));
  try {
    mkdirSync(path);
  } catch (e) {
    // Hazard: another process may have made it meanwhile (two worker processes sharing one
    // $EDDY_HOME create the same job directory at once): that is success, not an error.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    existingDir(path);
  }
};

/** Succeeds if `path` is a directory. @throws ENOTDIR otherwise. */
const existingDir = (path: string): void => {
  if (statSync(path).isDirectory()) return;
  throw Object.assign(new Error(`${path} exists and is not a directory`), { code: 'ENOTDIR' });
};
