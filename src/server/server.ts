/**
 * The HTTP server of a running job (its REST API, /metrics and the dashboard), on node:http.
 * Routes are few and fixed, so they are matched by hand; docs/REST.md documents each.
 *
 * Request order: Host check (without a token) -> token (API and /metrics) -> route -> body
 * (POST: JSON only) -> validation -> the job. Every error is `{ error: { code, message } }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { JobControlTarget, JobState } from '../control/types.js';
import { EddyError } from '../core/errors.js';
import { ApiError, readJsonBody, sendError, sendJson } from './http-util.js';
import type { JobMonitor } from './monitor.js';
import { checkHostHeader, checkToken, checkUiAccess } from './security.js';
import { serveStatic } from './static.js';
import type { JobDetails, JobSummary } from './types.js';
import { planQuery, rescaleBody, savepointBody, stopBody } from './validate.js';

/** What the server needs of a job: its monitor, its controls and the restore planner. */
export interface RestJob extends Pick<JobControlTarget, 'savepoint' | 'stop' | 'rescale'> {
  readonly id: string;
  readonly name: string;
  readonly monitor: JobMonitor;
  state(): { status: JobState; parallelism: number; startTime: string; rescaling: boolean };
  /**
   * `eddy inspect --plan --json` of the latest completed checkpoint or savepoint, planned at
   * `parallelism` (every operator) with per-operator overrides.
   * @throws EddyError `EDDY_JOB_CONTROL` without a completed checkpoint (-> 409).
   */
  rescalePlan(
    parallelism: number | undefined,
    operators: Readonly<Record<string, number>>,
  ): Promise<unknown>;
}

export interface RestServerOptions {
  /** Default 127.0.0.1; any other address needs `token`. */
  readonly host?: string | undefined;
  /** Default 8081; taken: the next free one (up to 100 further); 0: any free port. */
  readonly port?: number | undefined;
  readonly token?: string | undefined;
  /** The built dashboard (index.html + assets); missing: `/` says it is not built. */
  readonly uiDir?: string | undefined;
  readonly jobs: () => readonly RestJob[];
}

export interface RestServer {
  /** e.g. `http://127.0.0.1:8081` */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes connections once their responses are out. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_UI_PORT = 8081;
const PORT_TRIES = 100;

export const startRestServer = async (options: RestServerOptions): Promise<RestServer> => {
  const host = options.host ?? '127.0.0.1';
  checkUiAccess(host, options.token);
  const uiDir = options.uiDir === undefined ? undefined : resolve(options.uiDir);
  let url = '';
  const ctx: Context = { ...options, host, uiDir, url: () => url };
  const server = createServer((req, res) => {
    handle(req, res, ctx).catch((e) => {
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
    });
  });
  const port = await listen(server, host, options.port ?? DEFAULT_UI_PORT);
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  url = `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closed ??= new Promise<void>((done) => {
        server.close(() => done());
        server.closeIdleConnections();
        // Responses in flight (e.g. the stop that ends the job) finish first.
        setTimeout(() => server.closeAllConnections(), 500).unref();
      });
      return closed;
    },
  };
};

/** Listens on `port`, or the next free one when it is taken (any with 0). */
const listen = async (server: Server, host: string, port: number): Promise<number> => {
  for (let p = port, tries = 0; ; p++, tries++) {
    try {
      await new Promise<void>((ok, fail) => {
        const onError = (e: Error) => fail(e);
        server.once('error', onError);
        server.listen(p, host, () => {
          server.off('error', onError);
          ok();
        });
      });
      return (server.address() as AddressInfo).port;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (port === 0 || code !== 'EADDRINUSE' || tries >= PORT_TRIES || p >= 65535) {
        throw new EddyError(
          'EDDY_INVALID_ARGUMENT',
          `cannot serve the REST API on ${host}:${p}: ${(e as Error).message}${code === 'EADDRINUSE' ? ` (ports ${port}-${p} are taken; give --ui-port 0 for any free port)` : ''}`,
          { domain: 'user', cause: e },
        );
      }
    }
  }
};

interface Context extends RestServerOptions {
  readonly host: string;
  readonly uiDir: string | undefined;
  readonly url: () => string;
}

const handle = async (req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  if (ctx.token === undefined) checkHostHeader(req, ctx.host);
  const api = path === '/api' || path.startsWith('/api/') || path === '/metrics';
  if (!api) {
    // The dashboard's own files carry no data: they load without the token, then ask for it
    // once and send it with every API request.
    if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(req, 'GET');
    if (await serveStatic(ctx.uiDir, path, res)) return;
    throw notFound(`nothing at ${path}: the API is under /api/jobs (docs/REST.md)`);
  }
  if (ctx.token !== undefined) checkToken(req, ctx.token);
  if (path === '/metrics') {
    expectMethod(req, 'GET');
    await Promise.all(ctx.jobs().map((j) => j.monitor.refresh()));
    const texts = await Promise.all(ctx.jobs().map((j) => j.monitor.prometheus.text()));
    const type = ctx.jobs()[0]?.monitor.prometheus.contentType ?? 'text/plain; version=0.0.4';
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(texts.join(''));
    return;
  }
  const parts = path.split('/').filter((s) => s.length > 0); // ['api', 'jobs', id, action]
  if (parts[1] !== 'jobs' || parts.length > 4) throw notFound(`no API route ${path}`);
  if (parts.length === 2) {
    expectMethod(req, 'GET');
    return sendJson(res, 200, { jobs: ctx.jobs().map((j) => summaryOf(j, ctx)) });
  }
  const job = findJob(ctx.jobs(), decodeSegment(parts[2]!));
  const action = parts[3];
  switch (action) {
    case undefined:
      expectMethod(req, 'GET');
      await job.monitor.refresh();
      return sendJson(res, 200, detailsOf(job, ctx));
    case 'checkpoints':
      expectMethod(req, 'GET');
      return sendJson(res, 200, job.monitor.checkpoints());
    case 'key-groups':
      expectMethod(req, 'GET');
      await job.monitor.refresh();
      return sendJson(res, 200, job.monitor.keyGroups());
    case 'rescale-plan': {
      expectMethod(req, 'GET');
      const q = planQuery(url.searchParams);
      return sendJson(res, 200, await job.rescalePlan(q.parallelism, q.operators));
    }
    case 'savepoints': {
      expectMethod(req, 'POST');
      const body = savepointBody(await readJsonBody(req));
      return sendJson(res, 200, { path: await job.savepoint(body.dir) });
    }
    case 'rescale': {
      expectMethod(req, 'POST');
      const body = rescaleBody(await readJsonBody(req));
      if (job.state().rescaling) {
        throw new ApiError(
          409,
          'EDDY_RESCALE_IN_PROGRESS',
          'a rescale is already in progress: wait for it to finish (GET /api/jobs/:id shows "rescaling")',
        );
      }
      return sendJson(res, 200, await job.rescale(body.parallelism, body.operators));
    }
    case 'stop': {
      expectMethod(req, 'POST');
      const body = stopBody(await readJsonBody(req));
      const path = await job.stop(body.savepoint, body.dir, body.drain);
      return sendJson(res, 200, path === undefined ? { stopped: true } : { stopped: true, path });
    }
    default:
      throw notFound(`no API route ${path}`);
  }
};

const summaryOf = (job: RestJob, ctx: Context): JobSummary => {
  const s = job.state();
  return {
    id: job.id,
    name: job.name,
    status: s.status,
    startTime: s.startTime,
    parallelism: s.parallelism,
    url: ctx.url(),
  };
};

const detailsOf = (job: RestJob, ctx: Context): JobDetails => {
  const m = job.monitor;
  return {
    ...summaryOf(job, ctx),
    maxParallelism: m.maxParallelism(),
    restarts: m.restarts,
    rescaling: job.state().rescaling,
    lastRescale: m.lastRescale,
    metricsTime: m.sampledAt(),
    vertices: m.vertices(),
    edges: m.edges(),
  };
};

/** By full id or a unique prefix (as the CLI takes them). */
const findJob = (jobs: readonly RestJob[], id: string): RestJob => {
  const exact = jobs.find((j) => j.id === id);
  if (exact) return exact;
  const matches = id.length > 0 ? jobs.filter((j) => j.id.startsWith(id)) : [];
  if (matches.length === 1) return matches[0]!;
  throw notFound(`no job with id '${id}' here (GET /api/jobs lists this server's jobs)`);
};

/** A path segment as sent; a malformed %-escape cannot name a job (404, not 500). */
const decodeSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

const notFound = (message: string) => new ApiError(404, 'EDDY_NOT_FOUND', message);

const methodNotAllowed = (req: IncomingMessage, allowed: string) =>
  new ApiError(405, 'EDDY_METHOD_NOT_ALLOWED', `${req.method} is not allowed here: use ${allowed}`);

const expectMethod = (req: IncomingMessage, method: 'GET' | 'POST'): void => {
  if (req.method !== method) throw methodNotAllowed(req, method);
};
