/**
 * What `eddy` prints for an error that ends a command: the code and message, then, for a
 * failure in user code, the failing record (truncated) and the user's own stack frames (the
 * first few, not eddy's or Node's), found along the cause chain (which crosses threads as
 * serialized errors that keep their stacks). With EDDY_DEBUG=1, every stack in the chain.
 */
import { fileURLToPath } from 'node:url';
import { EddyError } from '../core/errors.js';

/** User frames printed at most. */
export const MAX_USER_FRAMES = 3;
const MAX_CHAIN = 16;

/** eddy's own package directory (this file is in <root>/dist/cli or <root>/src/cli). */
const EDDY_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The error and its causes, outermost first (errors only, at most MAX_CHAIN). */
const chainOf = (e: unknown): Error[] => {
  const out: Error[] = [];
  let c: unknown = e;
  while (c instanceof Error && out.length < MAX_CHAIN && !out.includes(c)) {
    out.push(c);
    c = c.cause;
  }
  return out;
};

/** The file a stack line `    at f (file:///a/b.ts:3:4)` points into, as a path. */
const frameFile = (line: string): string | undefined => {
  const m = /\(?((?:file:\/\/)?[^\s()]+?):\d+:\d+\)?\s*$/.exec(line);
  if (!m?.[1]) return undefined;
  const loc = m[1];
  if (loc.startsWith('file://')) {
    try {
      return fileURLToPath(loc);
    } catch {
      return undefined;
    }
  }
  return loc;
};

/** True for a frame in the user's code: not eddy's (dist/, src/), Node's or a dependency's. */
export const isUserFrame = (line: string, eddyRoot = EDDY_ROOT): boolean => {
  if (!line.trimStart().startsWith('at ')) return false;
  const file = frameFile(line);
  if (file === undefined || file.startsWith('node:') || !file.startsWith('/')) {
    // Windows paths (C:\...) count as files too.
    if (file === undefined || !/^[A-Za-z]:[\\/]/.test(file)) return false;
  }
  if (/[\\/]node_modules[\\/]/.test(file)) return false;
  const own = [`${eddyRoot}dist`, `${eddyRoot}src`];
  return !own.some((dir) => file.startsWith(`${dir}/`) || file.startsWith(`${dir}\\`));
};

/** The first user frames of the innermost error in the chain that has any. */
export const userFrames = (e: unknown, eddyRoot = EDDY_ROOT): string[] => {
  for (const err of chainOf(e).reverse()) {
    const frames = (err.stack ?? '')
      .split('\n')
      .filter((l) => isUserFrame(l, eddyRoot))
      .map((l) => l.trim());
    if (frames.length > 0) return frames.slice(0, MAX_USER_FRAMES);
  }
  return [];
};

/** The failing record's preview, from the first error in the chain that has one. */
const recordPreview = (e: unknown): string | undefined => {
  for (const err of chainOf(e)) {
    const p = (err as { recordPreview?: unknown }).recordPreview;
    if (typeof p === 'string') return p;
  }
  return undefined;
};

/** The lines printed for an error that ends a command (each ends with a newline). */
export const formatError = (e: unknown, debug = false): string => {
  const code = e instanceof EddyError ? e.code : 'EDDY_INTERNAL';
  let out = `eddy: error [${code}]: ${e instanceof Error ? e.message : String(e)}\n`;
  const record = recordPreview(e);
  if (record !== undefined) out += `  record: ${record}\n`;
  for (const frame of userFrames(e)) out += `    ${frame}\n`;
  if (debug) {
    chainOf(e).forEach((err, i) => {
      out += `${i === 0 ? '' : 'Caused by: '}${err.stack ?? `${err.name}: ${err.message}`}\n`;
    });
  }
  return out;
};
