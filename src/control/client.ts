/** Client side of the control socket: one newline-delimited JSON request, one response. */
import { createConnection } from 'node:net';
import { EddyError, type ErrorCode } from '../core/errors.js';
import type { ControlRequest, ControlResponse, ControlResults } from './types.js';

export interface SendControlOptions {
  /**
   * Give up after this many ms. Undefined (the default): wait as long as the job takes, since
   * a stop only answers once the job has drained and written its savepoint.
   */
  readonly timeoutMs?: number | undefined;
  /** How to name the job in error messages, e.g. `job 3f2a… (word-count)`. */
  readonly job?: string | undefined;
}

/** errno codes meaning nobody listens on the socket (a crashed job leaves its file behind). */
const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

const controlError = (message: string, cause?: unknown) =>
  new EddyError('EDDY_JOB_CONTROL', message, { domain: 'external', cause });

/**
 * Sends one request to a job's control server and resolves with the successful response.
 * A failure response is thrown as an `EddyError` carrying the job's error code; a socket
 * nobody listens on throws `EDDY_JOB_CONTROL` saying the job is not reachable.
 */
export const sendControl = <R extends ControlRequest>(
  socketPath: string,
  request: R,
  options: SendControlOptions = {},
): Promise<{ ok: true } & ControlResults[R['op']]> => {
  const job = options.job ?? `the job at ${socketPath}`;
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffered = '';
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              settle(() =>
                reject(controlError(`${job} did not answer within ${options.timeoutMs} ms`)),
              ),
            options.timeoutMs,
          );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      const line = buffered.slice(0, nl);
      settle(() => {
        try {
          resolve(toResult<R>(JSON.parse(line) as ControlResponse, job));
        } catch (e) {
          reject(e instanceof EddyError ? e : controlError(`${job} sent a malformed response`, e));
        }
      });
    });
    socket.on('error', (e: NodeJS.ErrnoException) =>
      settle(() =>
        reject(
          UNREACHABLE.has(e.code ?? '')
            ? controlError(`${job} is not reachable (probably crashed): ${e.code}`, e)
            : controlError(`cannot talk to ${job}: ${e.message}`, e),
        ),
      ),
    );
    // Hazard: the job may die mid-request (e.g. while draining for a stop); without this the
    // promise would never settle.
    socket.on('close', () =>
      settle(() =>
        reject(controlError(`${job} closed the connection without answering (did it crash?)`)),
      ),
    );
  });
};

const toResult = <R extends ControlRequest>(
  response: ControlResponse,
  job: string,
): { ok: true } & ControlResults[R['op']] => {
  if (response === null || typeof response !== 'object' || typeof response.ok !== 'boolean') {
    throw controlError(`${job} sent a malformed response`);
  }
  if (!response.ok) {
    // The code comes from the job's own EddyError, so it is one of ours.
    throw new EddyError(response.code as ErrorCode, response.message, { domain: 'external' });
  }
  return response as { ok: true } & ControlResults[R['op']];
};

/**
 * Whether anything listens on a socket: `false` only when the OS says nobody does (missing
 * file, connection refused), `true` when a connection opens, `undefined` when it could not
 * tell in time (a live but overloaded listener; callers must not treat that as dead).
 */
export const probeSocket = (socketPath: string, timeoutMs = 1000): Promise<boolean | undefined> =>
  new Promise((resolve) => {
    const socket = createConnection(socketPath);
    const done = (answer: boolean | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('connect', () => done(true));
    socket.on('error', (e: NodeJS.ErrnoException) =>
      done(UNREACHABLE.has(e.code ?? '') ? false : undefined),
    );
  });
