/**
 * The cluster's control connections (master <-> worker process, master <-> client): msgpack
 * messages in length-prefixed frames (runtime/transport/frame-stream.ts), with heartbeats.
 *
 * - Liveness: each side sends a `ping` every `heartbeatMs`; any message counts as a sign of
 *   life. A side that hears nothing for `timeoutMs` closes the connection and reports the
 *   peer lost (EDDY_WORKER_CRASHED, retriable). A killed process is noticed at once (the
 *   kernel closes its sockets); a frozen or cut-off one after `timeoutMs`.
 * - A deliberate close sends GOODBYE first, so the other side can tell it from a loss.
 * - Hazard: messages are plain data (no functions, class instances lose their prototype);
 *   errors travel as `SerializedError` (core/errors.ts).
 */
import { connect, type Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { EddyError } from '../core/errors.js';
import { encodeFrames, FrameDecoder, goodbyeMarker } from '../runtime/transport/frame-stream.js';

/** How often a side says it is alive, and how long silence means the peer is lost. */
export interface HeartbeatOptions {
  readonly heartbeatMs?: number | undefined;
  readonly timeoutMs?: number | undefined;
}

export const DEFAULT_HEARTBEAT_MS = 1000;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5000;
/** Largest control message: a job bundle travels in one. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

const packr = new Packr({ useRecords: false, moreTypes: true });
const PING = packr.pack({ type: 'ping' });

/** One control connection; `In` is what arrives, `Out` what is sent. */
export class ControlConnection<In extends { type: string }, Out extends { type: string }> {
  private readonly decoder: FrameDecoder;
  private handler: ((m: In) => void) | undefined;
  private early: In[] = [];
  private closeHandlers: Array<(error: EddyError | undefined) => void> = [];
  private ended = false;
  /** Why it ended (undefined: deliberately), for late `onClose` handlers. */
  private endError: EddyError | undefined;
  private goodbye = false;
  private lastHeard = Date.now();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly socket: Socket,
    /** Names the other end in errors, e.g. `worker w1 at 10.0.0.7:51234`. */
    public peer: string,
    heartbeat: HeartbeatOptions = {},
  ) {
    const heartbeatMs = heartbeat.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const timeoutMs = heartbeat.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    socket.setNoDelay(true);
    this.decoder = new FrameDecoder(
      {
        frame: (f) => this.onFrame(f),
        goodbye: () => {
          this.goodbye = true;
        },
      },
      peer,
      MAX_MESSAGE_BYTES,
    );
    socket.on('data', (chunk: Buffer) => {
      this.lastHeard = Date.now();
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.end(e instanceof EddyError ? e : lost(`${this.peer}: ${e}`));
      }
    });
    socket.on('error', (e) => this.end(lost(`${this.peer}: connection failed: ${e.message}`)));
    socket.on('close', () =>
      this.end(this.goodbye ? undefined : lost(`${this.peer} closed the connection`)),
    );
    let lastTick = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      // This side stalled (a long GC pause, synchronous work): the peer's pings may be waiting
      // unread in the socket, so the silence says nothing about the peer. Start counting again.
      if (now - lastTick > heartbeatMs + timeoutMs / 2) this.lastHeard = now;
      lastTick = now;
      const silent = now - this.lastHeard;
      if (silent > timeoutMs) {
        this.end(
          lost(`${this.peer} sent nothing for ${silent} ms (heartbeat timeout ${timeoutMs} ms)`),
        );
        return;
      }
      this.writeFrame(PING);
    }, heartbeatMs);
    this.timer.unref();
  }

  send(m: Out): void {
    this.writeFrame(packr.pack(m));
  }

  onMessage(handler: (m: In) => void): void {
    this.handler = handler;
    for (const m of this.early.splice(0)) handler(m);
  }

  /** Called once: `undefined` after a deliberate close (either side), else why it was lost. */
  onClose(handler: (error: EddyError | undefined) => void): void {
    if (this.ended) handler(this.endError);
    else this.closeHandlers.push(handler);
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Says goodbye and ends the connection; pending messages go first. */
  close(): void {
    if (this.ended) return;
    if (!this.socket.destroyed) this.socket.end(goodbyeMarker());
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.end(undefined);
  }

  /** Drops the connection at once, as a crash would (tests). */
  destroy(): void {
    this.socket.destroy();
  }

  private writeFrame(frame: Uint8Array): void {
    if (this.ended || this.socket.destroyed) return;
    for (const c of encodeFrames([frame])) this.socket.write(c);
  }

  private onFrame(frame: Uint8Array): void {
    // After the end (a bad frame earlier in the chunk, or our own close) nothing is delivered.
    if (this.ended) return;
    let m: unknown;
    try {
      m = packr.unpack(frame);
    } catch (e) {
      this.end(wireFormat(`${this.peer} sent an undecodable message: ${e}`));
      return;
    }
    if (typeof m !== 'object' || m === null || typeof (m as { type?: unknown }).type !== 'string') {
      this.end(wireFormat(`${this.peer} sent something that is not an eddy cluster message`));
      return;
    }
    const message = m as In;
    if (message.type === 'ping') return;
    if (!this.handler) {
      this.early.push(message);
      return;
    }
    try {
      this.handler(message);
    } catch (e) {
      // Our own handler failed: not the peer's fault, but the connection's state is unknown.
      this.end(
        new EddyError('EDDY_INTERNAL', `handling a message from ${this.peer} failed: ${e}`, {
          domain: 'internal',
          cause: e,
        }),
      );
    }
  }

  private end(error: EddyError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    clearInterval(this.timer);
    if (error) this.socket.destroy();
    const handlers = this.closeHandlers;
    this.closeHandlers = [];
    for (const h of handlers) h(error);
  }
}

const wireFormat = (message: string) =>
  new EddyError('EDDY_WIRE_FORMAT', message, { domain: 'internal' });

const lost = (message: string) =>
  new EddyError('EDDY_WORKER_CRASHED', message, { domain: 'internal' });

/** `host:port` -> its parts; the error names the flag and the value. */
export const parseAddress = (
  address: string,
  what = '--master',
): { host: string; port: number } => {
  const at = address.lastIndexOf(':');
  const host = at > 0 ? address.slice(0, at).replace(/^\[(.*)\]$/, '$1') : '';
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new EddyError(
      'EDDY_INVALID_ARGUMENT',
      `${what} must be host:port (e.g. 127.0.0.1:6123), got '${address}'`,
      { domain: 'user' },
    );
  }
  return { host, port };
};

/** Connects to `host:port`; rejects with EDDY_CLUSTER naming the address when it cannot. */
export const openConnection = <In extends { type: string }, Out extends { type: string }>(
  host: string,
  port: number,
  peer: string,
  heartbeat?: HeartbeatOptions,
): Promise<ControlConnection<In, Out>> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const onError = (e: Error) =>
      reject(
        new EddyError(
          'EDDY_CLUSTER',
          `cannot reach the eddy master at ${host}:${port}: ${e.message} (is \`eddy master --port ${port}\` running there?)`,
          { domain: 'user' },
        ),
      );
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(new ControlConnection<In, Out>(socket, peer, heartbeat));
    });
  });
