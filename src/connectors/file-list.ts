/**
 * Which files a file source reads: a directory (its regular files, non-recursive, without
 * hidden `.x` and `_x` names such as in-progress part files or `_SUCCESS` markers), a glob, or
 * one file. Positions name files relative to a base directory so state stays relocatable.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import fg from 'fast-glob';
import { EddyError } from '../core/errors.js';

export interface InputFiles {
  /** Directory the file names are relative to. */
  readonly base: string;
  /** Names relative to `base`, sorted by UTF-16 code units (locale-independent). */
  readonly files: readonly string[];
}

const sourceIoError = (message: string, cause?: unknown) =>
  new EddyError('EDDY_SOURCE_IO', `file source: ${message}`, { domain: 'user', cause });

const statOrThrow = async (path: string) => {
  try {
    return await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw sourceIoError(`path '${path}' does not exist`, e);
    throw sourceIoError(`cannot access path '${path}': ${(e as Error).message}`, e);
  }
};

/**
 * The base directory for `path` without listing files (enough when restoring positions).
 *
 * @example
 * await inputBase('data/*.jsonl'); // 'data'
 */
export const inputBase = async (path: string): Promise<string> => {
  if (fg.isDynamicPattern(path)) return globBase(path);
  return (await statOrThrow(path)).isDirectory() ? path : dirname(path);
};

const globBase = (pattern: string): string => fg.generateTasks([pattern])[0]?.base ?? '.';

/**
 * Lists the input files for `path`. Throws EDDY_SOURCE_IO naming the path when it does not
 * exist or a glob matches nothing (almost always a typo); an existing empty directory is fine.
 *
 * @example
 * await listInputFiles('data/in');        // { base: 'data/in', files: ['a.jsonl', 'b.jsonl'] }
 * await listInputFiles('data/*.jsonl');   // { base: 'data', files: [...] }
 */
export const listInputFiles = async (path: string): Promise<InputFiles> => {
  if (fg.isDynamicPattern(path)) return listGlob(path);
  const info = await statOrThrow(path);
  if (!info.isDirectory()) return { base: dirname(path), files: [basename(path)] };
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (e) {
    throw sourceIoError(`cannot list directory '${path}': ${(e as Error).message}`, e);
  }
  const files: string[] = [];
  for (const d of entries) {
    if (d.name.startsWith('.') || d.name.startsWith('_')) continue;
    if (d.isFile() || (d.isSymbolicLink() && (await isFileTarget(join(path, d.name))))) {
      files.push(d.name);
    }
  }
  return { base: path, files: files.sort() };
};

const isFileTarget = async (path: string): Promise<boolean> => {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false; // a dangling link is not an input file
  }
};

const listGlob = async (pattern: string): Promise<InputFiles> => {
  const base = globBase(pattern);
  // dot: false keeps hidden files (e.g. a sink's in-progress parts) out, as for directories.
  const matches = await fg(pattern, { onlyFiles: true, dot: false, unique: true });
  if (matches.length === 0) throw sourceIoError(`no files match '${pattern}'`);
  return { base, files: matches.map((m) => relative(base, m)).sort() };
};
