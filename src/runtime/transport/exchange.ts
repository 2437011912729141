/**
 * The transport seam. One Exchange per worker routes every frame of every channel: to a
 * local input gate directly (records passed by reference, no encoding), or through the
 * byte-level wire format to the peer worker's link. A TCP link for other processes or
 * hosts implements `PeerLink` and nothing above this file changes.
 */
import type { StreamElement } from '../../core/elements.js';
import { InternalError } from '../../core/errors.js';
import type { ChannelSpec } from '../plan.js';
import type { ChannelWriter, FrameSender } from './channel-writer.js';
import type { InputGate } from './input-gate.js';
import { WireCodec } from './wire.js';

/** A byte pipe to one peer worker. */
export interface PeerLink {
  send(frame: Uint8Array): void;
  onFrame(handler: (frame: Uint8Array) => void): void;
  close(): void;
}

export class Exchange implements FrameSender {
  private readonly codec = new WireCodec();
  private readonly gates = new Map<number, InputGate>();
  private readonly writers = new Map<number, ChannelWriter>();
  private readonly peers = new Map<number, PeerLink>();
  private readonly channels: ReadonlyMap<number, ChannelSpec>;
  /** Bytes sent to peers (for metrics). */
  bytesSent = 0;

  constructor(
    readonly workerIndex: number,
    channels: readonly ChannelSpec[],
  ) {
    this.channels = new Map(channels.map((c) => [c.id, c]));
  }

  registerGate(channel: ChannelSpec, gate: InputGate): void {
    this.gates.set(channel.id, gate);
  }

  registerWriter(writer: ChannelWriter): void {
    this.writers.set(writer.spec.id, writer);
  }

  connectPeer(worker: number, link: PeerLink): void {
    this.peers.set(worker, link);
    link.onFrame((frame) => this.onFrame(frame));
  }

  send(channel: ChannelSpec, element: StreamElement): void {
    if (channel.toWorker === this.workerIndex) {
      this.gateFor(channel.id).deliver(channel, element);
      return;
    }
    const frame = this.codec.encode(channel.id as never, element);
    this.bytesSent += frame.byteLength;
    this.peerFor(channel.toWorker).send(frame);
  }

  returnCredit(channel: ChannelSpec, n: number): void {
    if (channel.fromWorker === this.workerIndex) {
      this.writerFor(channel.id).addCredit(n);
      return;
    }
    this.peerFor(channel.fromWorker).send(this.codec.encodeCredit(channel.id as never, n));
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
  }

  private onFrame(frame: Uint8Array): void {
    const decoded = this.codec.decode(frame);
    if ('credit' in decoded) {
      this.writerFor(decoded.channel).addCredit(decoded.credit);
      return;
    }
    const spec = this.channels.get(decoded.channel);
    if (!spec) throw new InternalError(`frame for unknown channel ${decoded.channel}`);
    this.gateFor(spec.id).deliver(spec, decoded.element);
  }

  private gateFor(id: number): InputGate {
    const g = this.gates.get(id);
    if (!g)
      throw new InternalError(`worker ${this.workerIndex} has no input gate for channel ${id}`);
    return g;
  }

  private writerFor(id: number): ChannelWriter {
    const w = this.writers.get(id);
    if (!w) throw new InternalError(`worker ${this.workerIndex} has no writer for channel ${id}`);
    return w;
  }

  private peerFor(worker: number): PeerLink {
    const p = this.peers.get(worker);
    if (!p) throw new InternalError(`worker ${this.workerIndex} has no link to worker ${worker}`);
    return p;
  }
}
