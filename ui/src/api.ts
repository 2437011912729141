/**
 * The REST client. One place knows the token: on a 401 the dashboard asks for it once (the
 * token prompt resolves `tokenWaiter`), keeps it for the tab, and repeats the request with
 * `Authorization: Bearer <token>`. Concurrent 401s share the one prompt.
 */
import type {
  CheckpointHistory,
  JobDetail,
  JobSummary,
  KeyGroupBytes,
  RescalePlan,
  RescaleReport,
} from './types.js';

const TOKEN_KEY = 'eddy.token';

/** An `{ error: { code, message } }` answer, or a network failure (code `NETWORK`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type TokenAsker = (wrong: boolean) => Promise<string>;
let askToken: TokenAsker | undefined;
let pending: Promise<string> | undefined;

/** Registers the UI that asks the user for the token (the token prompt). */
export const setTokenAsker = (ask: TokenAsker) => {
  askToken = ask;
};

const token = () => sessionStorage.getItem(TOKEN_KEY) ?? undefined;

const obtainToken = (wrong: boolean): Promise<string> => {
  if (!askToken) return Promise.reject(new ApiError(401, 'UNAUTHORIZED', 'a token is needed'));
  pending ??= askToken(wrong).then((t) => {
    sessionStorage.setItem(TOKEN_KEY, t);
    pending = undefined;
    return t;
  });
  return pending;
};

const request = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  for (;;) {
    const sent = token();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (sent) headers.authorization = `Bearer ${sent}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      // fetch says only "Failed to fetch": the usual cause is a job that has ended.
      throw new ApiError(
        0,
        'NETWORK',
        `the job's server at ${location.host} does not answer (has the job ended?)`,
      );
    }
    if (res.status === 401) {
      // Another request got a newer token meanwhile: try that one. Otherwise ask (again,
      // saying the one sent was refused).
      if (token() === sent) await obtainToken(sent !== undefined);
      continue;
    }
    const text = await res.text();
    const json = text ? safeJson(text) : undefined;
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(
        res.status,
        err?.code ?? `HTTP_${res.status}`,
        err?.message ?? (text || res.statusText),
      );
    }
    return json as T;
  }
};

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

const job = (id: string) => `/api/jobs/${encodeURIComponent(id)}`;

/** The jobs this server knows (an array, or `{ jobs }`). */
export const listJobs = async (): Promise<JobSummary[]> => {
  const r = await request<JobSummary[] | { jobs: JobSummary[] }>('GET', '/api/jobs');
  return Array.isArray(r) ? r : (r?.jobs ?? []);
};

export const getJob = (id: string) => request<JobDetail>('GET', job(id));

/** The checkpoint history, newest first. */
export const getCheckpoints = async (id: string): Promise<CheckpointHistory> => {
  const r = await request<
    CheckpointHistory & { checkpoints?: CheckpointHistory['history']; latest?: unknown }
  >('GET', `${job(id)}/checkpoints`);
  const history = [...(r.history ?? r.checkpoints ?? [])].sort((a, b) => b.id - a.id);
  return { history, counts: r.counts, latestFailure: r.latestFailure ?? null };
};

/** State bytes per key group in the latest snapshot. */
export const getKeyGroups = (id: string) => request<KeyGroupBytes>('GET', `${job(id)}/key-groups`);

export const getRescalePlan = (id: string, parallelism: number) =>
  request<RescalePlan>('GET', `${job(id)}/rescale-plan?parallelism=${parallelism}`);

export const triggerSavepoint = (id: string) =>
  request<{ path: string }>('POST', `${job(id)}/savepoints`, {});

export const rescale = (id: string, parallelism: number) =>
  request<RescaleReport>('POST', `${job(id)}/rescale`, { parallelism });

export const stopJob = (id: string, savepoint: boolean) =>
  request<{ path?: string; savepoint?: string }>('POST', `${job(id)}/stop`, { savepoint });
