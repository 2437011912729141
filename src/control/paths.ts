/** Where job control keeps its files: `$EDDY_HOME` (default `~/.eddy`). */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { EddyError } from '../core/errors.js';

/** The eddy home directory: `$EDDY_HOME` if set and non-empty, else `~/.eddy`. */
export const eddyHome = (env: NodeJS.ProcessEnv = process.env): string => {
  const fromEnv = env.EDDY_HOME;
  return fromEnv ? resolve(fromEnv) : join(homedir(), '.eddy');
};

/** `<home>/jobs`: one JSON file per job. */
export const jobsDir = (home: string): string => join(home, 'jobs');

/** `<home>/run`: the control sockets of running jobs. */
export const runDir = (home: string): string => join(home, 'run');

/**
 * Unix socket paths are limited to 108 bytes on Linux and 104 on macOS (including the
 * terminating NUL), so the socket is named after the first 12 characters of the job id
 * rather than the whole id. Hazard: two jobs whose ids share 12 characters would share a
 * socket; with random UUIDs that is ~2^-48 per pair, and the server refuses to take over a
 * socket that still answers.
 */
export const SOCKET_ID_CHARS = 12;

/** Longest socket path accepted on every supported platform. */
export const MAX_SOCKET_PATH_BYTES = 103;

/** `<home>/run/<first 12 chars of id>.sock` */
export const socketPathFor = (home: string, jobId: string): string =>
  join(runDir(home), `${jobId.slice(0, SOCKET_ID_CHARS)}.sock`);

/** Throws a clear error rather than letting the OS truncate or reject a long socket path. */
export const checkSocketPath = (socketPath: string): void => {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new EddyError(
      'EDDY_JOB_CONTROL',
      `control socket path is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES}-byte limit of Unix sockets: ${socketPath} (set EDDY_HOME to a shorter directory)`,
      { domain: 'user' },
    );
  }
};
