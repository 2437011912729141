/**
 * Validation of request bodies and query strings. Each failure is a 400 naming the field, and
 * unknown fields are refused too: a typo (`parallelsim`) must not silently do nothing.
 */
import { badField } from './http-util.js';

export interface SavepointBody {
  readonly dir: string | undefined;
}

export interface StopBody {
  readonly savepoint: boolean;
  readonly dir: string | undefined;
  readonly drain: boolean;
}

export interface RescaleBody {
  readonly parallelism: number | undefined;
  readonly operators: Readonly<Record<string, number>>;
}

const onlyFields = (body: Record<string, unknown>, allowed: readonly string[]): void => {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) {
      throw badField(
        k,
        `unknown field '${k}': expected ${allowed.map((a) => `'${a}'`).join(', ')}`,
      );
    }
  }
};

const optionalString = (body: Record<string, unknown>, field: string): string | undefined => {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.trim().length === 0) {
    throw badField(field, `'${field}' must be a non-empty string (a directory path)`);
  }
  return v;
};

const optionalBoolean = (body: Record<string, unknown>, field: string): boolean => {
  const v = body[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw badField(field, `'${field}' must be true or false`);
  return v;
};

const parallelismValue = (v: unknown, field: string, what: string): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw badField(field, `${what} must be an integer >= 1, got ${JSON.stringify(v)}`);
  }
  return v;
};

/** `POST /api/jobs/:id/savepoints`: `{ "dir"?: string }`. */
export const savepointBody = (body: Record<string, unknown>): SavepointBody => {
  onlyFields(body, ['dir']);
  return { dir: optionalString(body, 'dir') };
};

/** `POST /api/jobs/:id/stop`: `{ "savepoint"?: boolean, "dir"?: string, "drain"?: boolean }`. */
export const stopBody = (body: Record<string, unknown>): StopBody => {
  onlyFields(body, ['savepoint', 'dir', 'drain']);
  const savepoint = optionalBoolean(body, 'savepoint');
  const dir = optionalString(body, 'dir');
  if (dir !== undefined && !savepoint) {
    throw badField(
      'dir',
      '\'dir\' is where a final savepoint goes: give "savepoint": true with it',
    );
  }
  return { savepoint, dir, drain: optionalBoolean(body, 'drain') };
};

/** `POST /api/jobs/:id/rescale`: `{ "parallelism"?: N, "operators"?: { uid: N } }`, one at least. */
export const rescaleBody = (body: Record<string, unknown>): RescaleBody => {
  onlyFields(body, ['parallelism', 'operators']);
  const parallelism =
    body.parallelism === undefined
      ? undefined
      : parallelismValue(body.parallelism, 'parallelism', "'parallelism'");
  const operators: Record<string, number> = {};
  const ops = body.operators;
  if (ops !== undefined) {
    if (ops === null || typeof ops !== 'object' || Array.isArray(ops)) {
      throw badField('operators', `'operators' must be an object of uid: parallelism`);
    }
    for (const [uid, n] of Object.entries(ops)) {
      operators[uid] = parallelismValue(
        n,
        `operators.${uid}`,
        `the parallelism of operator '${uid}'`,
      );
    }
  }
  if (parallelism === undefined && Object.keys(operators).length === 0) {
    throw badField(
      'parallelism',
      `give 'parallelism' (every operator) or 'operators' ({ "uid": N }), e.g. {"parallelism": 3}`,
    );
  }
  return { parallelism, operators };
};

/** `?parallelism=N&operator=uid:N…` of `GET /api/jobs/:id/rescale-plan`. */
export const planQuery = (query: URLSearchParams): RescaleBody => {
  for (const k of new Set(query.keys())) {
    if (k !== 'parallelism' && k !== 'operator') {
      throw badField(k, `unknown query parameter '${k}': expected 'parallelism' and 'operator'`);
    }
  }
  const ps = query.getAll('parallelism');
  if (ps.length > 1) throw badField('parallelism', "give 'parallelism' once");
  const p = ps[0];
  const parallelism =
    p === undefined
      ? undefined
      : parallelismValue(/^[0-9]+$/.test(p) ? Number(p) : p, 'parallelism', "'parallelism'");
  const operators: Record<string, number> = {};
  for (const spec of query.getAll('operator')) {
    const at = spec.lastIndexOf(':');
    const uid = spec.slice(0, at);
    const value = spec.slice(at + 1);
    if (at <= 0 || !/^[0-9]+$/.test(value)) {
      throw badField('operator', `'operator=${spec}' is not uid:N, e.g. operator=counts:3`);
    }
    if (operators[uid] !== undefined) {
      throw badField('operator', `operator '${uid}' is given twice: give it once`);
    }
    operators[uid] = parallelismValue(
      Number(value),
      'operator',
      `the parallelism of operator '${uid}'`,
    );
  }
  if (parallelism === undefined && Object.keys(operators).length === 0) {
    throw badField('parallelism', "give '?parallelism=N' and/or '&operator=uid:N'");
  }
  return { parallelism, operators };
};
