/**
 * One Redis connection of a connector, and what its failures mean.
 *
 * The client (ioredis) is set up so that eddy, not the client, decides how long to wait:
 * no offline queue and no per-request retries, so a command fails at once while the server
 * is unreachable, while the client keeps reconnecting in the background. Callers then retry
 * with back-off ({@link RedisConnection.retrying}) for at most `maxOutageMs` and fail with a
 * retriable `EDDY_SOURCE_IO` / `EDDY_SINK_IO`, or (a source's poll) return `'idle'` and try
 * again on the next poll, so checkpoints and stops are not held up by an outage.
 *
 * A server that *refuses* (credentials, permissions, a key of the wrong type) is not an
 * outage: that fails at once with `EDDY_CONNECTOR_CONFIG` (not retriable), naming the
 * server, the key and the fix. A failed AUTH never reaches a command (ioredis reports it on
 * its 'error' event and the connection stays unusable), so the connection remembers the last
 * refusal it saw there and {@link RedisConnection.retrying} reports it instead of an outage.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { lazyModule } from '../lazy-module.js';

/** ioredis, loaded by a connector's `open`/`start` before its first connection. */
export const ioredis = lazyModule('ioredis', () => import('ioredis'));

import { EddyError, InvalidArgumentError } from '../../core/errors.js';

/** Which side of a job a connection serves: decides the I/O error code. */
export type RedisRole = 'source' | 'sink';

/** Default for `maxOutageMs`: how long an unreachable server is waited for. */
export const DEFAULT_MAX_OUTAGE_MS = 30_000;

/** How a failed command is handled. */
export type FailureKind = 'refused' | 'transient' | 'failed';

/** Reply error prefixes of a server that refuses this client: a restart meets them again. */
const REFUSALS = ['NOAUTH', 'WRONGPASS', 'NOPERM', 'WRONGTYPE'];
/** Reply error prefixes of a server that is busy or recovering: wait, as for an outage. */
const TRANSIENT = ['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'CLUSTERDOWN', 'READONLY'];

const replyCode = (e: unknown): string | undefined => {
  if (!(e instanceof Error) || e.name !== 'ReplyError') return undefined;
  return /^[A-Z]+/.exec(e.message)?.[0] ?? '';
};

/**
 * Classifies a command failure. A reply error is the server's answer: a refusal (auth,
 * permissions, wrong type), a transient state (loading, busy, failover) or any other error
 * (`failed`). Anything else is the connection's (refused, reset, closed, not writeable while
 * reconnecting): transient.
 *
 * @example
 * classifyFailure(Object.assign(new Error('WRONGTYPE Operation against a key'), { name: 'ReplyError' })); // 'refused'
 */
export const classifyFailure = (e: unknown): FailureKind => {
  const code = replyCode(e);
  if (code === undefined) return 'transient';
  if (REFUSALS.includes(code)) return 'refused';
  // A server without streams (before 5.0) or with the command renamed away.
  if (code === 'ERR' && /^ERR unknown command/i.test((e as Error).message)) return 'refused';
  if (TRANSIENT.includes(code)) return 'transient';
  return 'failed';
};

/**
 * The server as named in messages: `redis://host:port[/db]`, the password left out.
 *
 * @example
 * serverName('redis://:secret@127.0.0.1:6379/2'); // 'redis://127.0.0.1:6379/2'
 */
export const serverName = (url: string): string => {
  try {
    const u = new URL(url);
    const db = u.pathname.length > 1 ? u.pathname : '';
    return `${u.protocol}//${u.host}${db}`;
  } catch {
    return '(invalid Redis URL)';
  }
};

/** Throws unless `url` is a `redis://` or `rediss://` URL. */
export const validateUrl = (url: unknown, what: string): void => {
  let ok = false;
  if (typeof url === 'string') {
    try {
      const u = new URL(url);
      ok = (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
    } catch {}
  }
  if (!ok) {
    throw new InvalidArgumentError(
      `${what}: url must be a Redis URL such as 'redis://127.0.0.1:6379', got ${JSON.stringify(url)}`,
    );
  }
};

/** Throws unless `ms` is undefined or a positive finite number. */
export const validateOutage = (ms: unknown, what: string): void => {
  if (ms !== undefined && (typeof ms !== 'number' || !(ms > 0) || !Number.isFinite(ms))) {
    throw new InvalidArgumentError(`${what}: maxOutageMs must be a positive number, got ${ms}`);
  }
};

/** The fix to suggest for a refusal, by reply code. */
const fixFor = (code: string | undefined, key: string | undefined): string => {
  if (code === 'WRONGTYPE') {
    return `key '${key ?? '?'}' exists but is not a stream: use another key or delete it (DEL ${key ?? '<key>'})`;
  }
  if (code === 'NOPERM') return 'grant the user the commands and keys it needs (ACL SETUSER)';
  if (code === 'ERR') return 'use Redis 5.0 or later with the stream commands and EVAL enabled';
  return 'put the right user and password in the URL (redis://user:password@host:port)';
};

/** Options of a {@link RedisConnection}. */
export interface RedisConnectionOptions {
  url: string;
  role: RedisRole;
  /** Who uses it, for messages, e.g. "redis source (operator 'orders', subtask 1/2)". */
  owner: string;
  maxOutageMs: number;
  /**
   * Queue commands while (re)connecting instead of failing them: only for a connection with
   * at most one command at a time whose waiting holds nothing up (the source's XREAD BLOCK).
   */
  queueWhileConnecting?: boolean;
}

/** Back-off between attempts while the server is unreachable. */
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1000;

/** One ioredis client with eddy's failure handling. */
export class RedisConnection {
  readonly client: Redis;
  readonly server: string;
  /** The last refusal (e.g. WRONGPASS) the client reported outside a command. */
  private refusal: Error | undefined;
  /** The last connection-level error, for the outage message. */
  private lastError: Error | undefined;
  private closed = false;

  constructor(private readonly options: RedisConnectionOptions) {
    this.server = serverName(options.url);
    this.client = new (ioredis.get().Redis)(options.url, {
      lazyConnect: false,
      enableOfflineQueue: options.queueWhileConnecting === true,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 2000,
      // Reconnect forever in the background; eddy's own deadline decides when to give up.
      retryStrategy: (times) => Math.min(times * FIRST_BACKOFF_MS, 500),
    });
    this.client.on('error', (e: Error) => {
      this.lastError = e;
      if (classifyFailure(e) === 'refused') this.refusal = e;
    });
    this.client.on('ready', () => {
      this.refusal = undefined;
    });
  }

  /**
   * Runs `op` until it succeeds: while the server is unreachable, again and again with
   * back-off for at most `maxOutageMs` (then a retriable I/O error); a refusal or another
   * server error fails at once. `key` names the key for messages. Only for operations that
   * are safe to repeat (reads, and writes guarded by the commit marker).
   */
  async retrying<T>(
    what: string,
    key: string | undefined,
    op: (c: Redis) => Promise<T>,
  ): Promise<T> {
    let since: number | undefined;
    let backoff = FIRST_BACKOFF_MS;
    for (;;) {
      this.checkOpen(what);
      try {
        return await op(this.client);
      } catch (e) {
        const kind = classifyFailure(e);
        if (kind !== 'transient') throw this.error(what, key, e);
        if (this.refusal !== undefined) throw this.error(what, key, this.refusal);
        since ??= performance.now();
        if (performance.now() - since >= this.options.maxOutageMs) throw this.outage(what, e);
        // Not connected (yet): go on as soon as the connection is ready, or after the back-off.
        if (this.client.status === 'ready') await delay(backoff);
        else await this.readyOr(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /**
   * The error for a failure that is not waited out here: a refusal becomes
   * `EDDY_CONNECTOR_CONFIG`; an outage or other failure a retriable I/O error. Also used by
   * callers that handle outages themselves (a source's poll).
   */
  error(what: string, keyName: string | undefined, e: unknown): EddyError {
    let key = keyName;
    const kind = classifyFailure(e);
    if (kind === 'transient' && this.refusal !== undefined)
      return this.error(what, key, this.refusal);
    const reason = e instanceof Error ? e.message : String(e);
    // The sink's commit script names the key in its WRONGTYPE reply.
    key ??= /^WRONGTYPE key (\S+)/.exec(reason)?.[1];
    const on = key === undefined ? '' : ` (key '${key}')`;
    if (kind === 'refused') {
      return new EddyError(
        'EDDY_CONNECTOR_CONFIG',
        `${this.options.owner}: Redis server ${this.server} refused ${what}${on}: ${reason}. ` +
          `Fix: ${fixFor(replyCode(e), key)}`,
        { domain: 'external', cause: e },
      );
    }
    return new EddyError(
      this.options.role === 'source' ? 'EDDY_SOURCE_IO' : 'EDDY_SINK_IO',
      `${this.options.owner}: ${what}${on} failed on Redis server ${this.server}: ${reason}`,
      { domain: 'external', cause: e },
    );
  }

  /** The retriable error for a server unreachable for longer than `maxOutageMs`. */
  outage(what: string, e?: unknown): EddyError {
    const cause = e ?? this.lastError;
    const reason = cause instanceof Error ? `: ${cause.message}` : '';
    return new EddyError(
      this.options.role === 'source' ? 'EDDY_SOURCE_IO' : 'EDDY_SINK_IO',
      `${this.options.owner}: Redis server ${this.server} unreachable for more than ` +
        `${this.options.maxOutageMs} ms (maxOutageMs) during ${what}${reason}. ` +
        'Check that the server is running and reachable; the job restarts from its last checkpoint',
      { domain: 'external', cause },
    );
  }

  /** Resolves when the client becomes ready, or after `ms`. */
  private readyOr(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.client.once('ready', done);
    });
  }

  /** The refusal seen on the connection, if any (e.g. a wrong password). */
  get refused(): Error | undefined {
    return this.refusal;
  }

  private checkOpen(what: string): void {
    if (this.closed) {
      throw new EddyError('EDDY_INTERNAL', `${this.options.owner}: ${what} after close`);
    }
  }

  /** Closes at once (pending commands fail): nothing is waited for. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.disconnect(false);
  }
}
