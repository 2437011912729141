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
import { MessagePortLink } from './transport/message-port-link.js';
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
port.on('message', (m: ToWorker) => {
  if (m.type === 'init') receiveInit(m.init);
  else if (deliver) deliver(m);
  else buffered.push(m);
});

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
  const handle = (m: ToWorker) => {
    if (m.type === 'connect') {
      for (const p of m.peers) agent.connectPeer(p.worker, new MessagePortLink(p.port));
    }
    agent.handle(m);
  };
  for (const m of buffered.splice(0)) handle(m);
  deliver = handle;
};

main().catch((e) => post({ type: 'failed', error: serializeError(e) }));
