/** Runs one worker's slice of the job inside a worker thread. */
import { parentPort, workerData } from 'node:worker_threads';
import { EddyError, serializeError } from '../core/errors.js';
import { fingerprint, type JobGraph } from './graph.js';
import { planExecution } from './plan.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { MessagePortLink } from './transport/message-port-link.js';
import { WorkerRuntime } from './worker-runtime.js';

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
  const runtime = new WorkerRuntime(graph, planExecution(graph), init.workerIndex, init.options);
  let failed = false;
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'connect':
        for (const p of m.peers) runtime.connectPeer(p.worker, new MessagePortLink(p.port));
        runtime
          .open()
          .then(() => post({ type: 'ready' }))
          .catch(fail);
        break;
      case 'start':
        void execute();
        break;
      case 'stop':
        runtime.requestStop();
        break;
      case 'cancel':
        failed = true;
        runtime
          .close(true)
          .catch(() => {})
          .finally(() => post({ type: 'cancelled' }));
        break;
    }
  });
  const fail = (e: unknown) => {
    failed = true;
    post({ type: 'failed', error: serializeError(e) });
  };
  const execute = async () => {
    const timer = setInterval(
      () => post({ type: 'metrics', reports: runtime.metrics() }),
      init.metricsIntervalMs,
    );
    try {
      await runtime.run();
      await runtime.close(false);
      if (!failed) post({ type: 'finished', reports: runtime.metrics() });
    } catch (e) {
      fail(e);
    } finally {
      clearInterval(timer);
    }
  };
};

main().catch((e) => post({ type: 'failed', error: serializeError(e) }));
