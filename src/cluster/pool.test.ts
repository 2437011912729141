/**
 * ClusterPool against a scripted master and scripted worker processes: what it sends where
 * (bundle before deploy, inits, the wiring), how it routes answers, and how it fails.
 */
import { describe, expect, it } from 'vitest';
import { StreamExecutionEnvironment } from '../api/environment.js';
import { GeneratorSource } from '../connectors/generator-source.js';
import { EddyError, serializeError } from '../core/errors.js';
import type { WorkerInit } from '../runtime/protocol.js';
import type { MasterToWorker } from './messages.js';
import { type AttemptRoute, ClusterPool, type SlotBroker, type WorkerProcessRef } from './pool.js';

const graph = (parallelism: number) => {
  const env = new StreamExecutionEnvironment({ jobName: 'pool', parallelism });
  env
    .fromSource(GeneratorSource.of({ count: 10, generate: (i) => i }), { uid: 'src' })
    .map((n) => n + 1, { uid: 'plus' })
    .sinkTo(
      {
        createWriter: () => ({ write() {}, flush() {}, async finish() {}, async abort() {} }),
      } as never,
      { uid: 'out' },
    );
  return env.buildGraph();
};

class FakeProcess implements WorkerProcessRef {
  readonly sent: MasterToWorker[] = [];
  private readonly bundles = new Set<string>();
  constructor(
    readonly id: string,
    readonly host: string,
  ) {}
  send(m: MasterToWorker): void {
    this.sent.push(m);
  }
  ensureBundle(sha256: string, code: string): void {
    if (this.bundles.has(sha256)) return;
    this.bundles.add(sha256);
    this.send({ type: 'bundle', sha256, code });
  }
  types(): string[] {
    return this.sent.map((m) => m.type);
  }
}

/** Grants workers round-robin over `processes`; records routes and releases. */
class FakeBroker implements SlotBroker {
  route_: AttemptRoute | undefined;
  attempt: string | undefined;
  released: Array<[string, number]> = [];
  ended: string[] = [];
  constructor(
    private readonly processes: FakeProcess[],
    private readonly refuse?: EddyError,
  ) {}
  async acquire(attempt: string, n: number) {
    if (this.refuse) throw this.refuse;
    this.attempt = attempt;
    return Array.from({ length: n }, (_, worker) => ({
      ref: this.processes[worker % this.processes.length]!,
      worker,
    }));
  }
  route(_attempt: string, route: AttemptRoute): void {
    this.route_ = route;
  }
  release(_attempt: string, process: string, worker: number): void {
    this.released.push([process, worker]);
  }
  endAttempt(attempt: string): void {
    this.ended.push(attempt);
  }
}

const options = (extra: Partial<ConstructorParameters<typeof ClusterPool>[2]> = {}) => ({
  jobId: 'job-1',
  bundle: { sha256: 'abc', code: 'export default 1' },
  spec: { args: ['--x'], parallelism: 4 },
  checkpointing: true,
  slotTimeoutMs: 1000,
  failFast: false,
  ...extra,
});

const deploys = (p: FakeProcess) =>
  p.sent.filter((m): m is Extract<MasterToWorker, { type: 'deploy' }> => m.type === 'deploy');

describe('ClusterPool', () => {
  it('sends each process the bundle once, then its workers; wires them when all listen', async () => {
    const a = new FakeProcess('a', '10.0.0.1');
    const b = new FakeProcess('b', '10.0.0.2');
    const broker = new FakeBroker([a, b]);
    const pool = new ClusterPool(graph(4), broker, options());
    expect(pool.workers).toBe(4);
    const handles = await pool.spawn(undefined);
    expect(handles).toHaveLength(4);
    expect(a.types()).toEqual(['bundle', 'deploy']);
    expect(b.types()).toEqual(['bundle', 'deploy']);
    const initsA = deploys(a)[0]!.inits as WorkerInit[];
    expect(initsA.map((i) => i.workerIndex)).toEqual([0, 2]);
    expect(deploys(a)[0]!.local).toEqual([0, 2]);
    // Two processes: every thread listens on its process's address, with the attempt's token.
    expect(initsA[0]!.tcp).toEqual({ host: '10.0.0.1', token: broker.attempt });
    expect(initsA[0]!.spec).toMatchObject({ args: ['--x'], parallelism: 4, module: '' });
    const route = broker.route_!;
    route.listening(0, 5000);
    route.listening(1, 5001);
    route.listening(2, 5002);
    expect(a.types()).toEqual(['bundle', 'deploy']);
    route.listening(3, 5003);
    const wire = a.sent.at(-1) as Extract<MasterToWorker, { type: 'wire' }>;
    expect(wire.type).toBe('wire');
    expect([...wire.peers].sort((x, y) => x.worker - y.worker)).toEqual([
      { worker: 0, host: '10.0.0.1', port: 5000 },
      { worker: 1, host: '10.0.0.2', port: 5001 },
      { worker: 2, host: '10.0.0.1', port: 5002 },
      { worker: 3, host: '10.0.0.2', port: 5003 },
    ]);
    expect(b.sent.at(-1)).toEqual(wire);
    // A second attempt on the same processes sends no bundle again.
    await pool.spawn(undefined);
    expect(a.types()).toEqual(['bundle', 'deploy', 'wire', 'deploy']);
  });

  it('on one process: no TCP, and the wiring (MessagePorts only) goes out at once', async () => {
    const a = new FakeProcess('a', '127.0.0.1');
    const broker = new FakeBroker([a]);
    await new ClusterPool(graph(2), broker, options()).spawn(undefined);
    expect(a.types()).toEqual(['bundle', 'deploy', 'wire']);
    expect((deploys(a)[0]!.inits as WorkerInit[]).every((i) => i.tcp === undefined)).toBe(true);
    expect(a.sent[2]).toMatchObject({ type: 'wire', peers: [] });
  });

  it('routes messages to their worker, also those that arrive before the job master listens', async () => {
    const a = new FakeProcess('a', 'h');
    const broker = new FakeBroker([a]);
    const handles = await new ClusterPool(graph(2), broker, options()).spawn(undefined);
    broker.route_!.fromWorker(1, { type: 'ready' });
    const got: string[] = [];
    handles[1]!.onMessage((m) => got.push(m.type));
    handles[0]!.onMessage((m) => got.push(`0:${m.type}`));
    broker.route_!.fromWorker(1, { type: 'firstRecord', at: 1 });
    expect(got).toEqual(['ready', 'firstRecord']);
    handles[0]!.post({ type: 'start' });
    expect(a.sent.at(-1)).toEqual({
      type: 'toWorker',
      attempt: broker.attempt,
      worker: 0,
      msg: { type: 'start' },
    });
  });

  it("a lost process crashes exactly its workers' handles, retriably, and frees their slots", async () => {
    const a = new FakeProcess('a', 'h1');
    const b = new FakeProcess('b', 'h2');
    const broker = new FakeBroker([a, b]);
    const handles = await new ClusterPool(graph(4), broker, options()).spawn(undefined);
    const crashed: Array<[number, EddyError]> = [];
    handles.forEach((h, i) => h.onCrash((e) => crashed.push([i, e])));
    broker.route_!.processLost(
      'b',
      new EddyError('EDDY_WORKER_CRASHED', 'worker process b lost: gone'),
    );
    expect(crashed.map(([i]) => i)).toEqual([1, 3]);
    expect(crashed[0]![1].code).toBe('EDDY_WORKER_CRASHED');
    expect(crashed[0]![1].retriable).toBe(true);
    expect(crashed[0]![1].message).toMatch(
      /worker 1 lost with its process: worker process b lost: gone/,
    );
    expect(broker.released).toEqual([
      ['b', 1],
      ['b', 3],
    ]);
    // Terminating a lost worker sends nothing; the others are asked and end when they say so.
    await handles[1]!.terminate();
    expect(b.sent.some((m) => m.type === 'terminate')).toBe(false);
    const ending = Promise.all([handles[0]!.terminate(), handles[2]!.terminate()]);
    expect(
      a.sent.filter((m) => m.type === 'terminate').map((m) => (m as { worker: number }).worker),
    ).toEqual([0, 2]);
    broker.route_!.terminated(0);
    broker.route_!.terminated(2);
    await ending;
    expect(broker.ended).toEqual([broker.attempt]);
  });

  it("a thread's crash is reported with its own error", async () => {
    const a = new FakeProcess('a', 'h');
    const broker = new FakeBroker([a]);
    const handles = await new ClusterPool(graph(2), broker, options()).spawn(undefined);
    let error: EddyError | undefined;
    handles[0]!.onCrash((e) => {
      error = e;
    });
    broker.route_!.crashed(
      0,
      serializeError(new EddyError('EDDY_WORKER_CRASHED', 'worker 0 exited with code 7')),
    );
    expect(error?.message).toBe('worker 0 exited with code 7');
  });

  it('workers that never report ready fail the attempt with EDDY_TIMEOUT naming them, and are still terminated', async () => {
    const a = new FakeProcess('a', 'h');
    const broker = new FakeBroker([a]);
    const handles = await new ClusterPool(graph(2), broker, options({ startTimeoutMs: 30 })).spawn(
      undefined,
    );
    broker.route_!.fromWorker(0, { type: 'ready' });
    const error = await new Promise<EddyError>((resolve) => handles[1]!.onCrash(resolve));
    expect(error.code).toBe('EDDY_TIMEOUT');
    expect(error.message).toMatch(
      /worker\(s\) 1 \(in a\) did not open their operators within 30 ms/,
    );
    const ending = handles[1]!.terminate();
    expect(a.sent.at(-1)).toMatchObject({ type: 'terminate', worker: 1 });
    broker.route_!.terminated(1);
    await ending;
  });

  it('passes the broker refusal on (no slots)', async () => {
    const refusal = new EddyError('EDDY_NO_SLOTS', 'job job-1 needs 2 task slot(s), 0 free');
    const pool = new ClusterPool(graph(2), new FakeBroker([], refusal), options());
    await expect(pool.spawn(undefined)).rejects.toBe(refusal);
  });
});
