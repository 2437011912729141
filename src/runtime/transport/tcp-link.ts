/**
 * PeerLink over TCP, for channels between worker processes (on one host or several).
 *
 * - One connection per worker pair carries every channel between them: frames already name
 *   their channel, and credit-based flow control happens above, in the Exchange. The link
 *   only carries frames, in order, never dropping one.
 * - Who connects: the worker with the LOWER index connects to the higher one
 *   ({@link connectsTo}); every worker listens once ({@link listenForPeers}) and accepts
 *   connections from the lower indexes. So each pair has exactly one connection.
 * - Handshake: the connecting side sends HELLO (magic, protocol version, its worker index,
 *   the index it expects to reach, the job/attempt token); the listening side answers WELCOME
 *   or REFUSE with a reason. A connection from another job, an earlier attempt (stale token),
 *   another eddy version or another program is refused with a clear error on both sides.
 * - Writes: frames sent in one synchronous stretch go out in one socket write (flushed on a
 *   microtask, as MessagePortLink does). When the socket reports backpressure (write returns
 *   false) frames wait in the link until 'drain'; the Exchange's credits bound that backlog.
 * - Ending: {@link TcpPeerLink.close} flushes, sends GOODBYE and ends its side. A connection
 *   that ends or fails without GOODBYE means the peer died or the network cut it off:
 *   `onError` gets a retriable EDDY_WORKER_CRASHED, so the master restarts the attempt.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { EddyError } from '../../core/errors.js';
import type { PeerLink } from './exchange.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrames,
  FrameDecoder,
  type FrameSink,
  goodbyeMarker,
} from './frame-stream.js';

/** Version of the TCP link protocol (handshake and framing); both ends must match. */
export const TCP_PROTOCOL_VERSION = 1;
/** 'EDDY': the first bytes of every handshake message. */
const MAGIC = [0x45, 0x44, 0x44, 0x59] as const;
const HELLO = 1;
const WELCOME = 2;
const REFUSE = 3;
/** magic (4) + u16 version + u8 type + u32 worker + u32 peer. */
const HANDSHAKE_HEADER = 15;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long a closed link waits for its peer to end too before it drops the socket. */
const LINGER_MS = 30_000;

/** Whether worker `self` opens the connection to worker `peer` (the lower index connects). */
export const connectsTo = (self: number, peer: number): boolean => self < peer;

/** Who this worker is on the wire: its index and the job/attempt token every peer must share. */
export interface PeerIdentity {
  /** This worker's index in the attempt. */
  readonly workerIndex: number;
  /** Identifies the job and attempt: a connection with another token is refused. */
  readonly token: string;
  /** Largest frame accepted (default 64 MiB). */
  readonly maxFrameBytes?: number;
  /** How long a handshake may take (default 10 s). */
  readonly handshakeTimeoutMs?: number;
}

/** Options of {@link listenForPeers}. */
export interface ListenOptions extends PeerIdentity {
  readonly host: string;
  /** 0 picks a free port; see {@link PeerListener.port}. */
  readonly port: number;
}

/** Options of {@link connectToPeer}. */
export interface ConnectOptions extends PeerIdentity {
  readonly host: string;
  readonly port: number;
  /** The index of the worker listening at host:port (a check against wrong addresses). */
  readonly peerIndex: number;
}

/** A listening worker: accepts one connection from each lower-indexed worker. */
export interface PeerListener {
  readonly host: string;
  /** The port actually bound (the one to announce when listening on port 0). */
  readonly port: number;
  /** The link from worker `fromWorker`, once it has connected and passed the handshake. */
  accept(fromWorker: number, timeoutMs?: number): Promise<TcpPeerLink>;
  /** Called for every connection refused (stale token, other version, foreign program). */
  onRefused(handler: (error: EddyError) => void): void;
  /** Stops listening; links already accepted stay open. */
  close(): Promise<void>;
}

/** A PeerLink over one TCP connection; see the file comment. */
export class TcpPeerLink implements PeerLink {
  /** Bytes written to the socket (frames and prefixes), for metrics. */
  bytesWritten = 0;
  /** Resolves once the socket is closed (both sides ended, or it failed). */
  readonly closed: Promise<void>;
  private readonly decoder: FrameDecoder;
  private pending: Uint8Array[] = [];
  private scheduled = false;
  private blocked = false;
  private handler: ((frame: Uint8Array) => void) | undefined;
  private early: Uint8Array[] = [];
  private errorHandler: ((error: EddyError) => void) | undefined;
  private error: EddyError | undefined;
  /** Gets the first frame while the handshake runs. */
  private handshake: ((frame: Uint8Array) => void) | undefined;
  private handshakeFailed: ((error: EddyError) => void) | undefined;
  private closing = false;
  private peerSaidGoodbye = false;

  /** @internal Built by {@link connectToPeer} and {@link listenForPeers}. */
  constructor(
    private readonly socket: Socket,
    peer: string,
    maxFrameBytes: number,
  ) {
    const sink: FrameSink = {
      frame: (f) => this.onWireFrame(f),
      goodbye: () => {
        this.peerSaidGoodbye = true;
      },
    };
    this.decoder = new FrameDecoder(sink, peer, maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.fail(e instanceof EddyError ? e : crashed(`frame handler failed: ${e}`, this.peer, e));
      }
    });
    socket.on('end', () => this.onEnd());
    socket.on('error', (e) => this.onSocketError(e));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Names the other end in errors, e.g. `worker 3 at 10.0.0.7:4100`. */
  get peer(): string {
    return this.decoder.peer;
  }

  /** @internal Set once the handshake says which worker the peer is. */
  set peer(name: string) {
    this.decoder.peer = name;
  }

  send(frame: Uint8Array): void {
    // After close() or a failure frames have nowhere to go; the attempt is over or ending.
    if (this.closing || this.error !== undefined) return;
    this.pending.push(frame);
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
    const early = this.early;
    this.early = [];
    for (const f of early) handler(f);
    if (this.socket.isPaused()) this.socket.resume();
  }

  /** Called once, with the first error: a lost peer (retriable) or a wire-format error. */
  onError(handler: (error: EddyError) => void): void {
    this.errorHandler = handler;
    if (this.error !== undefined) handler(this.error);
  }

  /** Flushes pending frames, sends GOODBYE and ends this side of the connection. */
  close(): void {
    if (this.closing) return;
    this.flushNow();
    this.closing = true;
    this.handler = undefined;
    if (this.socket.destroyed) return;
    // The socket buffers whatever backpressure held back; end() sends it all first.
    this.socket.end(goodbyeMarker());
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }

  /** Frames waiting for the next flush or for 'drain' (backpressure). */
  get backlog(): number {
    return this.pending.length;
  }

  /** @internal Routes the first frame to `onFirst`; errors before it go to `onFail`. */
  expectHandshake(
    onFirst: (frame: Uint8Array) => void,
    onFail: (error: EddyError) => void,
    timeoutMs: number,
  ): void {
    const timer = setTimeout(
      () => this.fail(timeout(`${this.peer} did not complete the handshake in ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    this.handshake = (f) => {
      clearTimeout(timer);
      this.handshake = undefined;
      // onFirst may fail the link (a refusal): that still goes to onFail.
      onFirst(f);
      this.handshakeFailed = undefined;
    };
    this.handshakeFailed = (e) => {
      clearTimeout(timer);
      onFail(e);
    };
  }

  /** @internal Writes one frame at once (handshake messages). */
  writeRaw(frame: Uint8Array): void {
    for (const c of encodeFrames([frame])) this.socket.write(c);
  }

  /** @internal Ends the connection after a refusal. */
  refuse(reasonFrame: Uint8Array, error: EddyError): void {
    this.error = error;
    this.closing = true;
    this.socket.end(Buffer.concat(encodeFrames([reasonFrame])));
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** @internal Fails the link (handshake errors, refusals received). */
  fail(error: EddyError): void {
    if (this.error !== undefined) return;
    this.error = error;
    this.socket.destroy();
    const hf = this.handshakeFailed;
    if (hf !== undefined) {
      this.handshakeFailed = undefined;
      this.handshake = undefined;
      hf(error);
      return;
    }
    if (this.closing) return;
    this.errorHandler?.(error);
  }

  private onWireFrame(frame: Uint8Array): void {
    if (this.handshake !== undefined) this.handshake(frame);
    else if (this.closing || this.error !== undefined) return;
    else if (this.handler !== undefined) this.handler(frame);
    else {
      // Frames that arrive before the Exchange registered its handler wait here.
      this.early.push(frame);
      this.socket.pause();
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (!this.blocked) this.flushNow();
  }

  private flushNow(): void {
    const frames = this.pending;
    if (frames.length === 0 || this.socket.destroyed) return;
    this.pending = [];
    const chunks = encodeFrames(frames);
    let ok = true;
    if (chunks.length > 1) this.socket.cork();
    for (const c of chunks) {
      this.bytesWritten += c.byteLength;
      ok = this.socket.write(c);
    }
    if (chunks.length > 1) this.socket.uncork();
    if (!ok && !this.closing) {
      this.blocked = true;
      this.socket.once('drain', () => {
        this.blocked = false;
        this.flushNow();
      });
    }
  }

  private onEnd(): void {
    if (this.peerSaidGoodbye || this.closing) return;
    const midFrame = this.decoder.buffered > 0 ? ' in the middle of a frame' : '';
    this.fail(crashed(`closed the connection${midFrame} without saying goodbye`, this.peer));
  }

  private onSocketError(e: Error): void {
    // After GOODBYE (or our own close) the peer may reset the connection: that is expected.
    if (this.peerSaidGoodbye || this.closing) return;
    this.fail(crashed(`connection failed: ${e.message}`, this.peer, e));
  }
}

/**
 * Connects to the worker listening at host:port and runs the handshake. Rejects with
 * EDDY_WORKER_CRASHED when it cannot be reached, EDDY_WIRE_FORMAT when it refuses.
 */
export const connectToPeer = (options: ConnectOptions): Promise<TcpPeerLink> =>
  new Promise((resolve, reject) => {
    const { host, port, peerIndex, workerIndex } = options;
    const socket = connect({ host, port, allowHalfOpen: true });
    socket.setKeepAlive(true, 10_000);
    const peer = `worker ${peerIndex} at ${host}:${port}`;
    const link = new TcpPeerLink(socket, peer, options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    link.expectHandshake(
      (frame) => {
        const reply = parseHandshake(frame);
        if (typeof reply === 'string') return link.fail(refused(`${peer} answered ${reply}`));
        if (reply.type === REFUSE) return link.fail(refused(`${peer} refused: ${reply.text}`));
        if (reply.type !== WELCOME || reply.worker !== peerIndex)
          return link.fail(
            refused(`${peer} answered as worker ${reply.worker} (type ${reply.type})`),
          );
        resolve(link);
      },
      reject,
      options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    socket.once('connect', () =>
      link.writeRaw(handshakeFrame(HELLO, workerIndex, peerIndex, options.token)),
    );
  });

/** Listens for the connections of lower-indexed workers; see {@link PeerListener}. */
export const listenForPeers = async (options: ListenOptions): Promise<PeerListener> => {
  const server = createServer({ allowHalfOpen: true });
  const state = new ListenerState(options, server);
  server.on('connection', (socket) => state.onConnection(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  return {
    host: options.host,
    port,
    accept: (from, timeoutMs) => state.accept(from, timeoutMs),
    onRefused: (h) => {
      state.refusedHandler = h;
    },
    close: () => state.close(),
  };
};

class ListenerState {
  refusedHandler: ((error: EddyError) => void) | undefined;
  private readonly arrived = new Map<number, TcpPeerLink>();
  private readonly waiting = new Map<
    number,
    { resolve: (link: TcpPeerLink) => void; reject: (error: EddyError) => void }
  >();
  /** Workers that connected already: a second connection from one is refused. */
  private readonly seen = new Set<number>();

  constructor(
    private readonly options: ListenOptions,
    private readonly server: Server,
  ) {}

  onConnection(socket: Socket): void {
    const me = this.options.workerIndex;
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setKeepAlive(true, 10_000);
    const link = new TcpPeerLink(
      socket,
      `peer at ${from}`,
      this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    );
    link.expectHandshake(
      (frame) => {
        const reason = this.check(frame, from);
        const hello = parseHandshake(frame);
        if (reason !== undefined || typeof hello === 'string') {
          const error = refused(`worker ${me} refused a connection from ${from}: ${reason}`);
          link.refuse(handshakeFrame(REFUSE, me, 0, reason ?? ''), error);
          this.refusedHandler?.(error);
          return;
        }
        this.seen.add(hello.worker);
        link.peer = `worker ${hello.worker} at ${from}`;
        link.writeRaw(handshakeFrame(WELCOME, me, hello.worker, ''));
        const w = this.waiting.get(hello.worker);
        if (w !== undefined) {
          this.waiting.delete(hello.worker);
          w.resolve(link);
        } else this.arrived.set(hello.worker, link);
      },
      (error) => this.refusedHandler?.(error),
      this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
  }

  accept(fromWorker: number, timeoutMs = DEFAULT_HANDSHAKE_TIMEOUT_MS): Promise<TcpPeerLink> {
    const link = this.arrived.get(fromWorker);
    if (link !== undefined) {
      this.arrived.delete(fromWorker);
      return Promise.resolve(link);
    }
    const me = this.options.workerIndex;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(fromWorker);
        reject(
          timeout(
            `worker ${fromWorker} did not connect to worker ${me} at ` +
              `${this.options.host}:${this.port} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.waiting.set(fromWorker, {
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async close(): Promise<void> {
    for (const l of this.arrived.values()) l.close();
    this.arrived.clear();
    const me = this.options.workerIndex;
    for (const [from, w] of this.waiting)
      w.reject(
        new EddyError(
          'EDDY_WORKER_CRASHED',
          `worker ${me} stopped listening before worker ${from} connected`,
        ),
      );
    this.waiting.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : this.options.port;
  }

  /** Why a HELLO is refused, or undefined when it is accepted. */
  private check(frame: Uint8Array, from: string): string | undefined {
    const me = this.options.workerIndex;
    const hello = parseHandshake(frame);
    if (typeof hello === 'string') return hello;
    if (hello.type !== HELLO) return `expected HELLO, got message type ${hello.type}`;
    if (hello.text !== this.options.token)
      return (
        `job/attempt token mismatch (got '${hello.text}', expected '${this.options.token}'): ` +
        'a connection from another job or an earlier attempt'
      );
    if (hello.peer !== me)
      return `worker ${hello.worker} meant to reach worker ${hello.peer}, this is worker ${me}`;
    if (!connectsTo(hello.worker, me))
      return `worker ${hello.worker} must not connect to worker ${me}: the lower index connects`;
    if (this.seen.has(hello.worker))
      return `worker ${hello.worker} is already connected (second connection from ${from})`;
    return undefined;
  }
}

interface HandshakeMessage {
  readonly type: number;
  readonly worker: number;
  readonly peer: number;
  readonly text: string;
}

const handshakeFrame = (type: number, worker: number, peer: number, text: string): Uint8Array => {
  const body = Buffer.from(text, 'utf8');
  const f = Buffer.allocUnsafe(HANDSHAKE_HEADER + body.length);
  f.set(MAGIC, 0);
  f.writeUInt16BE(TCP_PROTOCOL_VERSION, 4);
  f.writeUInt8(type, 6);
  f.writeUInt32BE(worker, 7);
  f.writeUInt32BE(peer, 11);
  f.set(body, HANDSHAKE_HEADER);
  return f;
};

/** The message, or why it is not one this version understands. */
const parseHandshake = (frame: Uint8Array): HandshakeMessage | string => {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.length < HANDSHAKE_HEADER || MAGIC.some((m, i) => b[i] !== m))
    return 'a handshake without the eddy magic bytes (not an eddy worker?)';
  const version = b.readUInt16BE(4);
  if (version !== TCP_PROTOCOL_VERSION)
    return (
      `protocol version ${version}, this process speaks version ${TCP_PROTOCOL_VERSION}: ` +
      'run the same eddy version on every worker'
    );
  return {
    type: b.readUInt8(6),
    worker: b.readUInt32BE(7),
    peer: b.readUInt32BE(11),
    text: b.toString('utf8', HANDSHAKE_HEADER),
  };
};

const crashed = (what: string, peer: string, cause?: unknown) =>
  new EddyError(
    'EDDY_WORKER_CRASHED',
    `${peer}: ${what}; the peer worker died or the network cut it off, the attempt restarts ` +
      'from its latest checkpoint',
    { domain: 'external', cause },
  );

const refused = (message: string) =>
  new EddyError('EDDY_WIRE_FORMAT', `handshake refused: ${message}`, { domain: 'internal' });

const timeout = (message: string) => new EddyError('EDDY_TIMEOUT', message, { domain: 'external' });
