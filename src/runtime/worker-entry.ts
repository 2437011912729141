/** Runs one worker's slice of the job inside a worker thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { EddyError, serializeError } from '../core/errors.js';
import { fingerprint, type JobGraph } from './graph.js';
import { planExecution } from './plan.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { MessagePortLink } from './transport/message-port-link.js';
import { WorkerAgent } from './worker-agent.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);

const main = async () => {
  const { loadJobGraph } = (await import(init.graphLoader)) as {
    loadJobGraph: (spec: unknown) => Promise<JobGraph>;
  };
  const graph = await loadJobGraph(init.spec);
  if (fingerprint(graph) !== init.fingerprint) {
    throw new EddyError(
      'EDDY_NONDETERMINISTIC_JOB',
      `worker ${init.workerIndex} built a different job graph than the coordinator: the job's build function must construct the same operators in the same order every time it runs (no randomness, no dependence on the thread it runs in)`,
      { domain: 'user' },
    );
  }
  const agent = new WorkerAgent(graph, planExecution(graph), init, post);
  await agent.prepare();
  port.on('message', (m: ToWorker) => {
    if (m.type === 'connect') {
      for (const p of m.peers) agent.connectPeer(p.worker, new MessagePortLink(p.port));
    }
    agent.handle(m);
  });
};

main().catch((e) => post({ type: 'failed', error: serializeError(e) }));
