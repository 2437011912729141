/**
 * Connections of the PostgreSQL sink: connect with retries while the server is unreachable,
 * and the classification of PostgreSQL's errors into eddy's codes:
 * - the server refuses (credentials, missing database or table, privileges, a setting):
 *   `EDDY_CONNECTOR_CONFIG`, not retriable — a restart meets the same refusal;
 * - the rows are refused (a data exception or a constraint violation): `EDDY_SINK_IO`,
 *   domain user, not retriable — replaying the same rows fails the same way;
 * - everything else (a lost connection, a server shutting down, out of resources, a
 *   deadlock): `EDDY_SINK_IO`, retriable — the job restarts from its latest checkpoint.
 */
import type pg from 'pg';
import { lazyModule } from '../lazy-module.js';

/** The `pg` client, loaded at the first connect (lazy-module.ts). */
const pgLib = lazyModule('pg', async () => (await import('pg')).default);

/** Loads `pg` now (`connect` does it; tests that build its errors by hand call this). */
export const loadPostgresClient = (): Promise<typeof pg> => pgLib.load();

/** `pg.DatabaseError` once `pg` is loaded: no server error can exist before. */
const isDatabaseError = (e: unknown): e is pg.DatabaseError => {
  const lib = pgLib.loaded();
  return lib !== undefined && e instanceof lib.DatabaseError;
};

import { EddyError } from '../../core/errors.js';

/** Where and what, for messages: `postgres sink (operator …) at 127.0.0.1:5432/db`. */
export interface Where {
  /** Who is speaking, e.g. `PostgreSQL sink (operator 'out' (uid o), subtask 1/2)`. */
  readonly who: string;
  /** `host:port/database` of the URL, never the password. */
  readonly server: string;
}

/** `host:port/database` of a postgres:// URL, for messages (the password is never shown). */
export const describeServer = (url: string): string => {
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `${u.hostname}:${u.port || '5432'}/${db}`;
  } catch {
    return '(unparsable URL)';
  }
};

/** Node socket errors meaning "the server is not reachable right now". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
]);

/** The SQLSTATE of a server error, or undefined for a client or socket error. */
export const sqlState = (e: unknown): string | undefined => {
  if (isDatabaseError(e)) return e.code;
  return undefined;
};

/**
 * True when the error means the server could not be reached or the connection was lost (and
 * a reconnect may succeed): socket errors, pg's "Connection terminated", connection
 * exceptions (class 08) and a server shutting down or starting up (57P01–57P03).
 */
export const isConnectionError = (e: unknown): boolean => {
  const state = sqlState(e);
  if (state !== undefined) return state.startsWith('08') || /^57P0[1-3]$/.test(state);
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true;
  const message = e instanceof Error ? e.message : String(e);
  return /connection terminated|not queryable|connection error|connection timeout/i.test(message);
};

/** Server refusals that no restart fixes (see the module comment). */
const isRefusal = (state: string): boolean =>
  state.startsWith('28') || // invalid authorization (wrong password, no such role)
  state === '3D000' || // database does not exist
  state === '3F000' || // schema does not exist
  state.startsWith('42') || // undefined table/column, privileges, no unique index for ON CONFLICT
  state === '55000' || // object not in prerequisite state (e.g. prepared transactions disabled)
  state === '0A000'; // feature not supported

/** The rows themselves are refused: the same replayed rows fail the same way. */
const isRowError = (state: string): boolean => state.startsWith('22') || state.startsWith('23');

const reason = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e);
  const d = e as pg.DatabaseError;
  const parts = [e.message || (d.code ?? e.constructor.name)];
  if (d.code !== undefined && isDatabaseError(e)) parts[0] += ` (SQLSTATE ${d.code})`;
  if (d.detail) parts.push(`detail: ${d.detail}`);
  if (d.hint) parts.push(`hint: ${d.hint}`);
  return parts.join('; ');
};

/**
 * Wraps an error from PostgreSQL in an EddyError naming `where`, what was being done and a
 * fix. `fix` is added to refusals (e.g. "create the table or pass createTable").
 */
export const pgError = (where: Where, doing: string, e: unknown, fix?: string): EddyError => {
  if (e instanceof EddyError) return e;
  const state = sqlState(e);
  const head = `${where.who} at ${where.server}: ${doing} failed: ${reason(e)}`;
  if (state !== undefined && isRefusal(state)) {
    return new EddyError('EDDY_CONNECTOR_CONFIG', fix === undefined ? head : `${head}. ${fix}`, {
      domain: 'external',
      cause: e,
    });
  }
  if (state !== undefined && isRowError(state)) {
    return new EddyError(
      'EDDY_SINK_IO',
      `${head}. The rows are refused by the table's types or constraints (replaying them fails ` +
        'the same way): fix toRow or the table',
      { domain: 'user', retriable: false, cause: e },
    );
  }
  return new EddyError('EDDY_SINK_IO', head, { domain: 'external', retriable: true, cause: e });
};

/** A connected client, and the first error it reported while idle (if any). */
export interface Connection {
  readonly client: pg.Client;
  /** The error pg emitted outside a query (e.g. the server closed the socket); undefined if none. */
  readonly lostWith: () => unknown;
  /** Ends the connection; never throws. A transaction still open is rolled back by the server. */
  readonly close: () => Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Options of {@link connect}. */
export interface ConnectOptions {
  readonly url: string;
  readonly where: Where;
  /** How long to keep retrying while the server is unreachable. */
  readonly maxOutageMs: number;
  /** Stops retrying early (the job is stopping or being torn down). */
  readonly signal?: AbortSignal;
  /** `application_name` shown in `pg_stat_activity`. */
  readonly applicationName?: string;
}

const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2_000;

/**
 * Connects, retrying with exponential back-off (50 ms doubling to 2 s) for as long as the
 * server is unreachable, up to `maxOutageMs`; then fails with retriable `EDDY_SINK_IO`. A
 * refusal (wrong credentials, no such database) fails at once with `EDDY_CONNECTOR_CONFIG`.
 */
export const connect = async (options: ConnectOptions): Promise<Connection> => {
  const deadline = performance.now() + options.maxOutageMs;
  let backoff = FIRST_BACKOFF_MS;
  const { Client } = await pgLib.load();
  for (let attempt = 1; ; attempt++) {
    const client = new Client({
      connectionString: options.url,
      application_name: options.applicationName ?? 'eddy',
      connectionTimeoutMillis: Math.max(1_000, Math.min(10_000, options.maxOutageMs)),
      // TCP keep-alive: a peer that vanished (host down, network cut) is noticed while idle.
      keepAlive: true,
    });
    let lost: unknown;
    // Without a listener an idle connection's error (server restart) would crash the thread.
    client.on('error', (e) => {
      lost ??= e;
    });
    try {
      await client.connect();
      return {
        client,
        lostWith: () => lost,
        close: async () => {
          try {
            await client.end();
          } catch {}
        },
      };
    } catch (e) {
      await client.end().catch(() => {});
      const retry =
        isConnectionError(e) && performance.now() + backoff < deadline && !options.signal?.aborted;
      if (!retry) {
        const state = sqlState(e);
        const fix =
          state?.startsWith('28') === true
            ? 'Check the user and password in the url and pg_hba.conf'
            : state === '3D000'
              ? 'Create the database or fix the url'
              : undefined;
        const err = pgError(options.where, `connecting (attempt ${attempt})`, e, fix);
        if (err.code === 'EDDY_SINK_IO' && isConnectionError(e)) {
          throw new EddyError(
            'EDDY_SINK_IO',
            `${err.message}; gave up after ${options.maxOutageMs} ms (maxOutageMs) of retries`,
            { domain: 'external', retriable: true, cause: e },
          );
        }
        throw err;
      }
      await sleep(backoff, options.signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
};

/**
 * Runs `action` on a connection, reconnecting and running it again while the server is
 * unreachable (up to `maxOutageMs` in all). Only for idempotent actions: an action whose
 * connection broke may or may not have taken effect.
 */
export const withReconnect = async <R>(
  options: ConnectOptions,
  current: Connection | undefined,
  action: (c: Connection) => Promise<R>,
): Promise<{ result: R; connection: Connection }> => {
  const deadline = performance.now() + options.maxOutageMs;
  let connection = current;
  let backoff = FIRST_BACKOFF_MS;
  for (;;) {
    if (connection === undefined || connection.lostWith() !== undefined) {
      await connection?.close();
      const left = Math.max(0, deadline - performance.now());
      connection = await connect({ ...options, maxOutageMs: left });
    }
    try {
      return { result: await action(connection), connection };
    } catch (e) {
      if (!isConnectionError(e) || performance.now() + backoff >= deadline) throw e;
      await connection.close();
      connection = undefined;
      await sleep(backoff, options.signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
};
