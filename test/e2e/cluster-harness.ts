/**
 * Real clusters for end-to-end tests: `eddy master`, `eddy worker` and `eddy run --master` as
 * child processes on 127.0.0.1 (the master on a free port). Every process is killed when the
 * test's cluster is torn down, whatever happened.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { ClusterClient } from '../../src/cluster/index.js';
import { EDDY, ROOT, waitUntil } from './helpers.js';

export interface Proc {
  readonly child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  stdout(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export interface ClusterStatusJson {
  workers: Array<{ id: string; address: string; slots: number; freeSlots: number }>;
  jobs: Array<{
    id: string;
    name: string;
    status: string;
    parallelism: number;
    reactive: boolean;
    restarts: number;
    rescales: Array<{
      from: number;
      to: number;
      reason: string;
      pauseMs: number;
      bytesRead: number;
    }>;
    error?: string;
  }>;
}

const start = (args: string[], env: NodeJS.ProcessEnv): Proc => {
  const child = spawn(process.execPath, [EDDY, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  child.stdout!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code, signal })),
  );
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
};

/** A master and its workers; `close()` kills every process it started. */
export class TestCluster {
  readonly procs: Proc[] = [];
  master!: Proc;
  port = 0;
  private workerCount = 0;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly masterArgs: string[] = [],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the master (on `port`, default a free one) and waits until it listens. */
  async startMaster(port = 0): Promise<Proc> {
    const m = start(['master', '--port', String(port), ...this.masterArgs], this.env);
    this.procs.push(m);
    this.master = m;
    await waitUntil(
      () => /listening on 127\.0\.0\.1:(\d+)/.test(m.stderr()) || m.child.exitCode !== null,
      'the master to listen',
      30_000,
    );
    const found = /listening on 127\.0\.0\.1:(\d+)/.exec(m.stderr());
    if (!found) throw new Error(`the master did not start:\n${m.stderr()}`);
    this.port = Number(found[1]);
    return m;
  }

  /** Starts a worker with `slots` slots and waits until the master lists it. */
  async startWorker(
    slots: number,
    extra: string[] = [],
    env: NodeJS.ProcessEnv = this.env,
  ): Promise<Proc & { id: string }> {
    const id = `w${++this.workerCount}`;
    const w = start(
      ['worker', '--master', this.address, '--slots', String(slots), '--id', id, ...extra],
      env,
    );
    this.procs.push(w);
    await waitUntil(
      () => /registered with the master/.test(w.stderr()) || w.child.exitCode !== null,
      `worker ${id} to register`,
      30_000,
    );
    if (w.child.exitCode !== null) throw new Error(`worker ${id} exited:\n${w.stderr()}`);
    return { ...w, id };
  }

  /** `eddy run <args> --master <this>` (not awaited: returns the process). */
  submit(args: string[]): Proc {
    const [cmd, job, ...rest] = args;
    const p = start([cmd!, job!, '--master', this.address, ...rest], this.env);
    this.procs.push(p);
    return p;
  }

  /** Runs `eddy <args>` to its end. */
  async cli(
    args: string[],
    env: NodeJS.ProcessEnv = this.env,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const p = start(args, env);
    const { code } = await p.exited;
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }

  /**
   * What `eddy cluster status --json` prints, asked over one connection from this process: the
   * tests poll it every 100 ms, and a CLI process per poll (~0.3 s of CPU each) starved the
   * cluster under test on this 2-core machine. The CLI command itself is tested on its own.
   */
  async status(): Promise<ClusterStatusJson> {
    const client = await ClusterClient.connect(this.address, {
      token: this.env.EDDY_CLUSTER_TOKEN || undefined,
    });
    try {
      const status = await client.request<unknown>({ kind: 'status' });
      return JSON.parse(JSON.stringify(status)) as ClusterStatusJson;
    } finally {
      client.close();
    }
  }

  /** Polls the status until `check` holds. */
  async waitForStatus(
    check: (s: ClusterStatusJson) => boolean,
    what: string,
    timeoutMs = 60_000,
  ): Promise<ClusterStatusJson> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (check(s)) return s;
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; last status:\n${JSON.stringify(s, null, 2)}\n` +
            `the master's stderr (last 4000 characters):\n${this.master.stderr().slice(-4000)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    for (const p of this.procs) p.kill('SIGKILL');
    await Promise.all(this.procs.map((p) => p.exited));
  }
}

/** Output of a finished `eddy run`, for failure messages. */
export const describeRun = (p: Proc): string => `stderr:\n${p.stderr()}\nstdout:\n${p.stdout()}`;

/** `p`, or a failure naming what did not happen within `ms` (with `explain()`'s details). */
export const within = <T>(p: Promise<T>, ms: number, explain: () => string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`after ${ms} ms: ${explain()}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
};
