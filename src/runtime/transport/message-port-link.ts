/** PeerLink over a worker_threads MessagePort. Each frame owns its ArrayBuffer, so it is
 * transferred, not copied. */
import type { MessagePort } from 'node:worker_threads';
import type { PeerLink } from './exchange.js';

export class MessagePortLink implements PeerLink {
  constructor(private readonly port: MessagePort) {}

  send(frame: Uint8Array): void {
    this.port.postMessage(frame, [frame.buffer as ArrayBuffer]);
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.port.on('message', handler);
  }

  close(): void {
    this.port.close();
  }
}
