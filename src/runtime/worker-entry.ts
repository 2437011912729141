/**
 * Runs one worker's slice of the job inside a worker thread. A thread is either started with
 * its `WorkerInit` (workerData.init), or started warm (workerData.warm): it loads the graph
 * loader and the job module ahead of time, then waits for an `init` message — so a rescale or
 * restart can overlap the expensive start-up (TypeScript loader, job module) with the stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EddyError, serializeError } from '../core/errors.js';
import { fingerprint, type JobGraph } from './graph.js';
import { planExecution } from './plan.js';
import type { FromWorker, ToWorker, WarmWorkerData, WorkerInit } from './protocol.js';
import type { FromThreadListening, ToThreadWire } from './thread-messages.js';
import type { PeerLink } from './transport/exchange.js';
import { MessagePortLink } from './transport/message-port-link.js';
import {
  connectsTo,
  connectToPeer,
  listenForPeers,
  type PeerListener,
  type TcpPeerLink,
} from './transport/tcp-link.js';
import { WorkerAgent } from './worker-agent.js';

interface GraphLoader {
  loadJobGraph(spec: unknown): Promise<JobGraph>;
  /** Optional: imports what `loadJobGraph(spec)` will need, without building anything. */
  preloadJob?(spec: unknown): Promise<void>;
}

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const data = workerData as { init?: WorkerInit; warm?: WarmWorkerData };

// One listener from the start: messages that arrive while the worker is still loading (the
// coordinator connects peers right after spawning) are buffered, never dropped.
const buffered: ToWorker[] = [];
let deliver: ((m: ToWorker) => void) | undefined;
let receiveInit!: (init: WorkerInit) => void;
const initMessage = new Promise<WorkerInit>((resolve) => {
  receiveInit = resolve;
});
let receiveWire!: (wire: ToThreadWire) => void;
const wireMessage = new Promise<ToThreadWire>((resolve) => {
  receiveWire = resolve;
});
port.on('message', (m: ToWorker | ToThreadWire) => {
  if (m.type === 'init') receiveInit(m.init);
  else if (m.type === 'wire') receiveWire(m);
  else if (deliver) deliver(m);
  else buffered.push(m);
});

let linkFailed = false;
/** A peer link that breaks fails the worker: the master restarts the attempt. */
const failOnLinkError = (link: TcpPeerLink) =>
  link.onError((e) => {
    if (linkFailed) return;
    linkFailed = true;
    post({ type: 'failed', error: serializeError(e) });
  });

/**
 * Opens every peer link of `wire`: MessagePorts as they are, TCP links by connecting to the
 * higher-indexed peers and accepting the lower ones (one connection per pair).
 */
const openLinks = async (
  init: WorkerInit,
  wire: ToThreadWire,
  listener: PeerListener | undefined,
): Promise<Array<[number, PeerLink]>> => {
  const links: Array<[number, PeerLink]> = wire.ports.map((p) => [
    p.worker,
    new MessagePortLink(p.port),
  ]);
  const tcp = await Promise.all(
    wire.tcp.map(async (peer): Promise<[number, TcpPeerLink]> => {
      const me = init.workerIndex;
      const identity = { workerIndex: me, token: init.tcp!.token };
      const link = connectsTo(me, peer.worker)
        ? await connectToPeer({
            ...identity,
            host: peer.host,
            port: peer.port,
            peerIndex: peer.worker,
          })
        : await listener!.accept(peer.worker);
      failOnLinkError(link);
      return [peer.worker, link];
    }),
  );
  // Stop listening; not awaited: a server's close waits for its accepted connections to end.
  void listener?.close();
  return [...links, ...tcp];
};

const initOf = async (): Promise<WorkerInit> => {
  if (data.init) return data.init;
  const warm = data.warm!;
  try {
    const loader = (await import(warm.graphLoader)) as GraphLoader;
    await loader.preloadJob?.(warm.spec);
  } catch {
    // Not usable: end the thread so the pool drops it and starts a fresh one, which reports
    // the same failure properly with its init.
    process.exit(1);
  }
  post({ type: 'warm' });
  return initMessage;
};

const main = async () => {
  const init = await initOf();
  // Listen first, so peers learn this worker's address while its job loads.
  const listener = init.tcp
    ? await listenForPeers({
        host: init.tcp.host,
        port: 0,
        workerIndex: init.workerIndex,
        token: init.tcp.token,
      })
    : undefined;
  if (listener)
    port.postMessage({ type: 'listening', port: listener.port } satisfies FromThreadListening);
  if (init.sourceMaps) process.setSourceMapsEnabled(true);
  const { loadJobGraph } = (await import(init.graphLoader)) as GraphLoader;
  const graph = await loadJobGraph(init.spec);
  if (fingerprint(graph) !== init.fingerprint) {
    throw new EddyError(
      'EDDY_NONDETERMINISTIC_JOB',
      `worker ${init.workerIndex} built a different job graph than the coordinator: the job's build function must construct the same operators in the same order every time it runs (no randomness, no dependence on the thread it runs in)`,
      { domain: 'user' },
    );
  }
  const agent = new WorkerAgent(
    graph,
    planExecution(graph, { placement: init.placement }),
    init,
    post,
  );
  await agent.prepare();
  const handle = (m: ToWorker) => agent.handle(m);
  for (const m of buffered.splice(0)) handle(m);
  deliver = handle;
  for (const [worker, link] of await openLinks(init, await wireMessage, listener)) {
    agent.connectPeer(worker, link);
  }
  agent.handle({ type: 'connect' });
};

main().catch((e) => post({ type: 'failed', error: serializeError(e) }));
