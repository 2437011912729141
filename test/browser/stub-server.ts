/**
 * A stand-in for a job's REST server (docs/REST.md shapes) with synthetic, moving numbers: to
 * look at the dashboard (`npx tsx test/browser/stub-server.ts [port]`) without running a job.
 * The rescale plan is the real planner's on the checkpoint in STUB_CHECKPOINT, if given.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join } from 'node:path';
import { inspectCheckpoint } from '../../src/cli/inspect.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const UI = join(ROOT, 'dist/ui');
const started = Date.now();
let parallelism = 2;
let lastRescale: object | null = null;
const MAXP = 128;

const ranges = (p: number) =>
  Array.from({ length: p }, (_, i) => [
    Math.ceil((i * MAXP) / p),
    Math.ceil(((i + 1) * MAXP) / p) - 1,
  ]);

const kgBytes = Array.from({ length: MAXP }, (_, k) =>
  Math.round(18 + 14 * Math.abs(Math.sin(k * 1.7)) + (k % 37 === 3 ? 60 : 0)),
);

const subtasks = (uid: string, keyed: boolean, t: number) =>
  ranges(parallelism).map((r, index) => {
    const rate = 1000 / parallelism + 200 * Math.sin(t / 7 + index) + (uid === 'events' ? 30 : 0);
    const n = Math.round((rate * t) / 1);
    return {
      index,
      worker: index % 2,
      recordsIn: uid === 'events' ? 0 : n,
      recordsOut: n,
      recordsInPerSecond: uid === 'events' ? 0 : rate,
      recordsOutPerSecond: uid === 'totals' ? 0 : rate,
      backpressure:
        uid === 'events'
          ? Math.max(0, 0.35 + 0.3 * Math.sin(t / 5 + index))
          : uid === 'running-sum'
            ? 0.05
            : 0,
      watermark: null,
      keyGroupRange: keyed ? r : null,
      stateBytes: keyed ? kgBytes.slice(r[0], r[1]! + 1).reduce((a, b) => a + b, 0) : 58,
    };
  });

const job = () => {
  const t = (Date.now() - started) / 1000;
  const vertices = [
    ['events', 'events', 'source', false],
    ['running-sum', 'running-sum', 'operator', true],
    ['totals', 'totals', 'sink', false],
  ].map(([uid, name, kind, keyed]) => {
    const subs = subtasks(uid as string, keyed as boolean, t);
    const sum = (f: (s: (typeof subs)[0]) => number) => subs.reduce((a, s) => a + f(s), 0);
    return {
      uid,
      name,
      kind,
      keyed,
      parallelism,
      maxParallelism: MAXP,
      recordsIn: sum((s) => s.recordsIn),
      recordsOut: sum((s) => s.recordsOut),
      recordsInPerSecond: sum((s) => s.recordsInPerSecond),
      recordsOutPerSecond: sum((s) => s.recordsOutPerSecond),
      backpressure: Math.max(...subs.map((s) => s.backpressure)),
      stateBytes: sum((s) => s.stateBytes),
      subtasks: subs,
    };
  });
  return {
    id: 'keyed-sum-1a2b3c',
    name: 'keyed-sum',
    status: 'running',
    startTime: new Date(started).toISOString(),
    parallelism,
    url: '',
    maxParallelism: MAXP,
    restarts: 0,
    rescaling: false,
    lastRescale,
    metricsTime: new Date().toISOString(),
    vertices,
    edges: [
      { from: 'events', to: 'running-sum', partitioning: 'hash' },
      { from: 'running-sum', to: 'totals', partitioning: 'forward' },
    ],
  };
};

const checkpoints = () => {
  const n = Math.floor((Date.now() - started) / 2000);
  const history = Array.from({ length: n }, (_, i) => {
    const id = i + 1;
    const failed = id === 4;
    return {
      id,
      kind: id === 7 ? 'savepoint' : 'checkpoint',
      status: failed ? 'failed' : 'completed',
      triggerTime: new Date(started + id * 2000).toISOString(),
      durationMs: 8 + (id % 5) * 3,
      syncMs: failed ? null : 1.2,
      asyncMs: failed ? null : 4 + (id % 3),
      bytes: failed ? null : 2400 + id * 10,
      path: failed ? null : `/root/.eddy/jobs/keyed-sum/checkpoints/chk-${id}`,
      cause: failed
        ? 'subtask running-sum#1 declined: checkpoint timeout after 600000 ms'
        : undefined,
    };
  }).reverse();
  return {
    counts: { completed: n, failed: n >= 4 ? 1 : 0 },
    history,
    latestCompleted: history.find((h) => h.status === 'completed') ?? null,
    latestFailure: history.find((h) => h.status === 'failed') ?? null,
  };
};

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const json = (code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const p = url.pathname;
  if (p === '/api/jobs')
    return json(200, {
      jobs: [
        { ...job(), vertices: undefined, edges: undefined },
        {
          id: 'word-count-9f8e',
          name: 'word-count',
          status: 'finished',
          startTime: new Date(started - 3600_000).toISOString(),
          parallelism: 3,
          url: 'http://127.0.0.1:1/',
        },
      ],
    });
  if (p === '/api/jobs/keyed-sum-1a2b3c') return json(200, job());
  if (p.endsWith('/checkpoints')) return json(200, checkpoints());
  if (p.endsWith('/key-groups'))
    return json(200, {
      checkpointId: 3,
      path: '/x/chk-3',
      operators: [
        {
          uid: 'running-sum',
          name: 'running-sum',
          maxParallelism: MAXP,
          parallelism,
          bytes: kgBytes,
        },
      ],
    });
  if (p.endsWith('/rescale-plan')) {
    const dir = process.env.STUB_CHECKPOINT;
    if (!dir)
      return json(409, {
        error: { code: 'EDDY_NO_CHECKPOINT', message: 'no completed checkpoint yet' },
      });
    const n = Number(url.searchParams.get('parallelism'));
    try {
      return json(200, (await inspectCheckpoint(dir, { plan: n })).report);
    } catch (e) {
      return json(400, { error: { code: 'EDDY_INVALID_PARALLELISM', message: String(e) } });
    }
  }
  if (p.endsWith('/rescale') && req.method === 'POST') {
    let body = '';
    for await (const c of req) body += c;
    const to = JSON.parse(body).parallelism as number;
    await new Promise((r) => setTimeout(r, 600));
    const report = {
      savepoint: '/root/.eddy/jobs/keyed-sum/rescales/sp-12',
      fromParallelism: parallelism,
      toParallelism: to,
      operators: {},
      pauseMs: 212.4,
      prepareMs: 840,
      bytesRead: 2245,
      keyGroups: 53,
      restoreMs: 31,
    };
    lastRescale = { at: new Date().toISOString(), ...report };
    parallelism = to;
    return json(200, report);
  }
  if (p.endsWith('/savepoints'))
    return json(200, { path: '/root/.eddy/jobs/keyed-sum/savepoints/sp-9' });
  if (p.endsWith('/stop')) return json(200, { stopped: true });
  if (p.startsWith('/api/'))
    return json(404, { error: { code: 'EDDY_UNKNOWN_JOB', message: 'no such job' } });
  const file = p === '/' ? 'index.html' : p.slice(1);
  try {
    const body = readFileSync(join(UI, file));
    const type =
      { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' }[extname(file)] ??
      'application/octet-stream';
    res.writeHead(200, { 'content-type': type });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const a = server.address();
  console.log(`stub listening on http://127.0.0.1:${typeof a === 'object' && a ? a.port : '?'}/`);
});
