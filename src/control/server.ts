/**
 * The control server inside a running job: a Unix domain socket speaking newline-delimited
 * JSON, one response line per request line. Requests are answered in order per connection.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { EddyError } from '../core/errors.js';
import { probeSocket } from './client.js';
import { checkSocketPath } from './paths.js';
import type { ControlFailure, ControlRequest, JobControlTarget } from './types.js';

/** A running control server. */
export interface ControlServer {
  readonly socketPath: string;
  /**
   * Stops listening and removes the socket file. Requests whose answer is ready by the next
   * event-loop turn are still answered (a stop resolves as the job ends, and its caller must
   * see the savepoint path); any still pending are answered with an `EDDY_JOB_CONTROL`
   * failure, so `close` never waits on the target.
   */
  close(): Promise<void>;
}

/** Longest request line accepted; requests are tiny, so more is garbage or abuse. */
const MAX_LINE = 64 * 1024;

/**
 * Starts the control server of a job on `socketPath` (see `socketPathFor`: the path must
 * stay under ~100 bytes). Creates the socket's directory (mode 0700: whoever can connect can
 * stop the job) and removes a stale socket file left by a crashed job, but refuses to take
 * over a socket something still answers on. There is no server-side timeout: a stop request
 * is answered only once the job has drained and written its savepoint.
 */
export const startControlServer = async (
  socketPath: string,
  target: JobControlTarget,
): Promise<ControlServer> => {
  checkSocketPath(socketPath);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  if ((await probeSocket(socketPath)) !== false) {
    // true: a live listener; undefined: cannot tell, so do not unlink someone else's socket.
    // A missing file also probes false, so this only fires when something exists there.
    throw new EddyError(
      'EDDY_JOB_CONTROL',
      `control socket ${socketPath} is in use by another process`,
      { domain: 'user' },
    );
  }
  rmSync(socketPath, { force: true });

  const connections = new Set<Socket>();
  const pending = new Map<Socket, Set<(failure: ControlFailure) => void>>();
  const server = createServer((socket) => {
    connections.add(socket);
    pending.set(socket, new Set());
    socket.on('close', () => {
      connections.delete(socket);
      pending.delete(socket);
    });
    serveConnection(socket, target, pending.get(socket)!);
  });
  await listen(server, socketPath);

  let closing: Promise<void> | undefined;
  const close = async () => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    await nextTurn();
    for (const socket of connections) {
      for (const fail of pending.get(socket) ?? []) {
        fail({ ok: false, code: 'EDDY_JOB_CONTROL', message: 'the job ended before answering' });
      }
      // end() flushes the responses written above before closing; destroy afterwards so a
      // client that never closes its side cannot keep `close` waiting.
      socket.end(() => socket.destroy());
    }
    await stopped;
    rmSync(socketPath, { force: true });
  };
  return {
    socketPath,
    close: () => {
      closing ??= close();
      return closing;
    },
  };
};

const listen = (server: Server, socketPath: string) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', (e) =>
      reject(
        new EddyError('EDDY_JOB_CONTROL', `cannot listen on ${socketPath}: ${e.message}`, {
          cause: e,
        }),
      ),
    );
    server.listen(socketPath, () => resolve());
  });

const serveConnection = (
  socket: Socket,
  target: JobControlTarget,
  pending: Set<(failure: ControlFailure) => void>,
) => {
  // Hazard: an unhandled 'error' (client gone: EPIPE, ECONNRESET) would crash the job.
  socket.on('error', () => {});
  socket.setEncoding('utf8');
  let buffered = '';
  let queue = Promise.resolve();
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      queue = queue.then(() => answer(socket, line, target, pending));
      nl = buffered.indexOf('\n');
    }
    if (buffered.length > MAX_LINE) {
      socket.destroy();
    }
  });
};

const answer = async (
  socket: Socket,
  line: string,
  target: JobControlTarget,
  pending: Set<(failure: ControlFailure) => void>,
): Promise<void> => {
  let answered = false;
  const respond = (response: object) => {
    if (answered) return;
    answered = true;
    pending.delete(fail);
    if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
  };
  const fail = (failure: ControlFailure) => respond(failure);
  pending.add(fail);
  let request: ControlRequest;
  try {
    request = JSON.parse(line) as ControlRequest;
  } catch (e) {
    respond({ ok: false, code: 'EDDY_JOB_CONTROL', message: `malformed request: ${String(e)}` });
    return;
  }
  try {
    respond({ ok: true, ...(await dispatch(request, target)) });
  } catch (e) {
    respond(failureOf(e));
  }
};

const dispatch = async (request: ControlRequest, target: JobControlTarget): Promise<object> => {
  switch (request?.op) {
    case 'status':
      return { status: target.status() };
    case 'savepoint':
      return { path: await target.savepoint(optionalString(request.dir)) };
    case 'stop': {
      const path = await target.stop(
        request.savepoint === true,
        optionalString(request.dir),
        request.drain === true,
      );
      return path === undefined ? {} : { path };
    }
    case 'rescale': {
      const operators =
        request.operators && typeof request.operators === 'object' ? request.operators : {};
      const parallelism = typeof request.parallelism === 'number' ? request.parallelism : undefined;
      const outcome = await target.rescale(parallelism, operators);
      return 'unchanged' in outcome ? { unchanged: outcome } : { report: outcome };
    }
    default:
      throw new EddyError(
        'EDDY_JOB_CONTROL',
        `unknown control request: ${JSON.stringify(request)}`,
      );
  }
};

const optionalString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const failureOf = (e: unknown): ControlFailure => {
  if (e instanceof EddyError) return { ok: false, code: e.code, message: e.message };
  return { ok: false, code: 'EDDY_INTERNAL', message: e instanceof Error ? e.message : String(e) };
};
