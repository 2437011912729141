/**
 * One NATS connection per reader, writer or enumerator, that reconnects by itself (with
 * exponential backoff) and tracks how long the server has been away: past `maxOutageMs` the
 * connector fails with a retriable I/O error naming the server, so the job restarts from its
 * last checkpoint rather than hanging.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import {
  configError,
  describeServers,
  ioError,
  isAuthFailure,
  type NatsRole,
  reason,
} from './errors.js';
import { natsJetStream, natsTransport } from './libs.js';

/** Default for `maxOutageMs`: how long a lost server is retried before the job fails. */
export const DEFAULT_MAX_OUTAGE_MS = 60_000;

/** What every NATS connector takes to connect. */
export interface NatsConnectionSettings {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /**
   * How long a lost server is retried (reconnects with backoff) before the job fails with a
   * retriable `EDDY_SOURCE_IO` / `EDDY_SINK_IO` error (default 60 000 ms).
   */
  maxOutageMs?: number;
  /**
   * Further options for the NATS client (`user`/`pass`, `token`, `authenticator`, `tls`,
   * `name`, ...). `servers` and the reconnect settings are the connector's.
   */
  connectionOptions?: Omit<
    NodeConnectionOptions,
    'servers' | 'reconnect' | 'maxReconnectAttempts' | 'reconnectDelayHandler'
  >;
}

/** Backoff between attempts: 100 ms doubling to 2 s. */
export const backoffMs = (attempt: number): number => Math.min(2000, 100 * 2 ** attempt);

/**
 * Time since a server was first seen away (disconnected, or requests failing), reset by a
 * success. `exceeded` once it passes `maxMs`.
 */
export class Outage {
  private since: number | undefined;

  constructor(
    readonly maxMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Something failed: starts the outage clock unless running. */
  fail(): void {
    this.since ??= this.now();
  }

  /** Something worked: the server is back. */
  ok(): void {
    this.since = undefined;
  }

  get active(): boolean {
    return this.since !== undefined;
  }

  /** Milliseconds since the outage began (0 when there is none). */
  get elapsedMs(): number {
    return this.since === undefined ? 0 : this.now() - this.since;
  }

  get exceeded(): boolean {
    return this.since !== undefined && this.now() - this.since > this.maxMs;
  }
}

/** An open connection, its outage clock, and the servers as one string for messages. */
export interface NatsLink {
  readonly nc: NatsConnection;
  readonly outage: Outage;
  readonly server: string;
  /**
   * The last permission violation the server reported (asynchronously: a publish the user
   * may not make is dropped, and only this tells why).
   */
  permissionError: Error | undefined;
  /** Closes the connection (never throws). */
  close(): Promise<void>;
}

/**
 * Connects, retrying with backoff while the server is unreachable (up to `maxOutageMs`, then
 * a retriable I/O error); refused credentials fail at once (`EDDY_CONNECTOR_CONFIG`). The
 * connection then reconnects forever by itself; `outage` tells how long it has been away.
 */
export const openLink = async (
  settings: NatsConnectionSettings,
  role: NatsRole,
  signal?: AbortSignal,
): Promise<NatsLink> => {
  const server = describeServers(settings.servers);
  const outage = new Outage(settings.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS);
  let reconnects = 0;
  const options: NodeConnectionOptions = {
    timeout: 5000,
    ...settings.connectionOptions,
    servers: settings.servers,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectDelayHandler: () => backoffMs(reconnects++),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      // Both libraries now: the rest of the connector uses them synchronously after this.
      const [{ connect }] = await Promise.all([natsTransport.load(), natsJetStream.load()]);
      const nc = await connect(options);
      const link: NatsLink = {
        nc,
        outage,
        server,
        permissionError: undefined,
        close: () => closeQuietly(nc),
      };
      watch(link, () => {
        reconnects = 0;
      });
      return link;
    } catch (e) {
      if (isAuthFailure(e)) {
        throw configError(
          role,
          server,
          `refused the connection (${reason(e)})`,
          'check the credentials in `connectionOptions` (user/pass, token, authenticator)',
          e,
        );
      }
      outage.fail();
      if (outage.exceeded || signal?.aborted) {
        throw ioError(role, server, `unreachable for ${Math.round(outage.elapsedMs)} ms`, e);
      }
      await delay(backoffMs(attempt));
    }
  }
};

/**
 * Follows the connection's status: away from 'disconnect' until 'reconnect'; remembers
 * permission violations.
 */
const watch = (link: NatsLink, onReconnect: () => void): void => {
  void (async () => {
    for await (const s of link.nc.status()) {
      if (s.type === 'disconnect') link.outage.fail();
      else if (s.type === 'reconnect') {
        link.outage.ok();
        onReconnect();
      } else if (s.type === 'error' && isAuthFailure(s.error)) link.permissionError = s.error;
    }
  })().catch(() => undefined);
};

const closeQuietly = async (nc: NatsConnection): Promise<void> => {
  if (nc.isClosed()) return;
  try {
    await nc.close();
  } catch {
    // Closing after a failure must not mask it.
  }
};
