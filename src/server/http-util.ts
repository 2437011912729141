/** Small node:http helpers: JSON responses, API errors with their status, bounded JSON bodies. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EddyError } from '../core/errors.js';
import type { ErrorBody } from './types.js';

/** An error answered as `{ error: { code, message, field? } }` with `status`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string | undefined,
  ) {
    super(message);
  }
}

/** 400 naming the request field that is wrong. */
export const badField = (field: string, message: string): ApiError =>
  new ApiError(400, 'EDDY_INVALID_ARGUMENT', message, field);

/**
 * The status of an error thrown by the job: bad arguments are the caller's (400), job-control
 * errors are conflicts with the job's state (409: still starting, stopping, a rescale already
 * running), anything else is the server's (500).
 */
export const statusOf = (e: unknown): { status: number; body: ErrorBody } => {
  if (e instanceof ApiError) {
    const field = e.field === undefined ? {} : { field: e.field };
    return { status: e.status, body: { error: { code: e.code, message: e.message, ...field } } };
  }
  if (e instanceof EddyError) {
    const status =
      e.code === 'EDDY_INVALID_ARGUMENT' || e.code === 'EDDY_INVALID_PARALLELISM'
        ? 400
        : e.code === 'EDDY_JOB_CONTROL'
          ? 409
          : 500;
    return { status, body: { error: { code: e.code, message: e.message } } };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { status: 500, body: { error: { code: 'EDDY_INTERNAL', message } } };
};

export const sendJson = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void => {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
};

export const sendError = (res: ServerResponse, e: unknown): void => {
  const { status, body } = statusOf(e);
  const headers: Record<string, string> =
    status === 401 ? { 'www-authenticate': 'Bearer realm="eddy"' } : {};
  sendJson(res, status, body, headers);
};

/** Largest request body accepted (413 beyond). */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * The JSON object in the request body. A mutating request must say it sends JSON (415
 * otherwise: a browser form cannot post to the API from another site). An empty body is `{}`.
 */
export const readJsonBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new ApiError(
      415,
      'EDDY_UNSUPPORTED_MEDIA_TYPE',
      `send the request body as JSON with Content-Type: application/json (got ${type ? `'${type}'` : 'no Content-Type'})`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      throw new ApiError(
        413,
        'EDDY_PAYLOAD_TOO_LARGE',
        `the request body is over ${MAX_BODY_BYTES} bytes`,
      );
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badField('body', `the request body is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badField('body', 'the request body must be a JSON object');
  }
  return value as Record<string, unknown>;
};
