/**
 * Between a pool and its worker threads, beside the master's messages (protocol.ts): how a
 * thread reaches its peers. Thread-only: MessagePorts cannot leave the process, so none of
 * this crosses TCP; a worker process builds these messages for its own threads.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PeerAddress } from './protocol.js';

/**
 * The thread's links: `ports` to workers of the same process, `tcp` the addresses of the rest.
 * The thread opens every link, then opens its subtasks and reports `ready`.
 */
export interface ToThreadWire {
  readonly type: 'wire';
  readonly ports: ReadonlyArray<{ readonly worker: number; readonly port: MessagePort }>;
  readonly tcp: readonly PeerAddress[];
}

/** From a worker thread to its pool: the port it listens on for TCP peers. */
export interface FromThreadListening {
  readonly type: 'listening';
  readonly port: number;
}
