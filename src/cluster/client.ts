/**
 * A client of the cluster master: requests (submit, status, stop, savepoint, rescale, follow)
 * and the events of followed jobs, over one control connection (wire.ts).
 */
import { deserializeError, EddyError } from '../core/errors.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  type ClientRequest,
  type ClientToMaster,
  type JobEvent,
  type MasterToClient,
} from './messages.js';
import {
  type ControlConnection,
  type HeartbeatOptions,
  openConnection,
  parseAddress,
} from './wire.js';

export class ClusterClient {
  private nextReq = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: EddyError) => void }
  >();
  private eventHandler: ((jobId: string, e: JobEvent) => void) | undefined;
  private closeHandler: ((error: EddyError | undefined) => void) | undefined;
  /** Why the master refused this client (its answer to the hello, request 0). */
  private refused: EddyError | undefined;

  private constructor(
    private readonly conn: ControlConnection<MasterToClient, ClientToMaster>,
    readonly address: string,
  ) {
    conn.onMessage((m) => {
      if (m.type === 'event') return this.eventHandler?.(m.jobId, m.event);
      if (m.req === 0 && m.error) {
        this.refused = deserializeError(m.error);
        return;
      }
      const w = this.waiting.get(m.req);
      if (!w) return;
      this.waiting.delete(m.req);
      if (m.error) w.reject(deserializeError(m.error));
      else w.resolve(m.value);
    });
    conn.onClose((error) => {
      const lost =
        this.refused ??
        (error === undefined
          ? new EddyError('EDDY_CLUSTER', `the master at ${address} closed the connection`)
          : new EddyError('EDDY_CLUSTER', `lost the master at ${address}: ${error.message}`, {
              cause: error,
            }));
      for (const w of this.waiting.values()) w.reject(lost);
      this.waiting.clear();
      this.closeHandler?.(error === undefined && !this.refused ? undefined : lost);
    });
  }

  /** Connects to `host:port` (as `--master` gives it); `token`: the cluster's shared secret. */
  static async connect(
    address: string,
    options: { heartbeat?: HeartbeatOptions | undefined; token?: string | undefined } = {},
  ): Promise<ClusterClient> {
    const { host, port } = parseAddress(address);
    const conn = await openConnection<MasterToClient, ClientToMaster>(
      host,
      port,
      `master at ${address}`,
      options.heartbeat,
    );
    conn.send({
      type: 'hello',
      version: CLUSTER_PROTOCOL_VERSION,
      role: 'client',
      token: options.token,
    });
    return new ClusterClient(conn, address);
  }

  request<T>(body: ClientRequest): Promise<T> {
    const req = this.nextReq++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(req, { resolve: resolve as (v: unknown) => void, reject });
      this.conn.send({ type: 'request', req, body });
    });
  }

  onEvent(handler: (jobId: string, e: JobEvent) => void): void {
    this.eventHandler = handler;
  }

  /** The connection ended: `undefined` if this side closed it. */
  onClose(handler: (error: EddyError | undefined) => void): void {
    this.closeHandler = handler;
  }

  close(): void {
    this.closeHandler = undefined;
    this.conn.close();
  }
}
