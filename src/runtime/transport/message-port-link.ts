/**
 * PeerLink over a worker_threads MessagePort. Each frame owns its ArrayBuffer, so it is
 * transferred, not copied. Frames sent in the same synchronous stretch (until the next
 * microtask checkpoint) travel as one message: with many subtasks per worker, the end of input
 * or a checkpoint sends a control frame on every channel (p² of them on a hash edge), and one
 * postMessage per frame cost more memory and time than the frames themselves.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PeerLink } from './exchange.js';

export class MessagePortLink implements PeerLink {
  private pending: Uint8Array[] = [];

  constructor(private readonly port: MessagePort) {}

  send(frame: Uint8Array): void {
    if (this.pending.push(frame) === 1) queueMicrotask(() => this.flush());
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.port.on('message', (m: Uint8Array | Uint8Array[]) => {
      if (Array.isArray(m)) for (const frame of m) handler(frame);
      else handler(m);
    });
  }

  close(): void {
    this.flush();
    this.port.close();
  }

  private flush(): void {
    const frames = this.pending;
    if (frames.length === 0) return;
    this.pending = [];
    if (frames.length === 1) {
      this.port.postMessage(frames[0], [frames[0]!.buffer as ArrayBuffer]);
      return;
    }
    this.port.postMessage(
      frames,
      frames.map((f) => f.buffer as ArrayBuffer),
    );
  }
}
