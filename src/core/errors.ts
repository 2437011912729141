/**
 * One error hierarchy with stable codes. `domain` says whose fault it is (the user's job or
 * input, an external system, or eddy itself); `retriable` says whether a restart may help
 * (decided per code by `defaultRetriable`, overridable per error). `subtask`, when set,
 * is the operator subtask the error is attributed to (`attributeTo`).
 */

/** Whose fault an error is: the user's job or input, an external system, or eddy itself. */
export type ErrorDomain = 'user' | 'external' | 'internal';

/** Stable error codes; match on these, not on messages. */
export type ErrorCode =
  | 'EDDY_INVALID_ARGUMENT'
  | 'EDDY_INVALID_PARALLELISM'
  | 'EDDY_UNHASHABLE_KEY'
  | 'EDDY_INVALID_JOB'
  | 'EDDY_JOB_MODULE'
  | 'EDDY_NONDETERMINISTIC_JOB'
  | 'EDDY_BAD_RECORD'
  | 'EDDY_USER_FUNCTION'
  | 'EDDY_FATAL'
  | 'EDDY_STATE'
  | 'EDDY_SOURCE_IO'
  | 'EDDY_SINK_IO'
  | 'EDDY_CONNECTOR_CONFIG'
  | 'EDDY_WIRE_FORMAT'
  | 'EDDY_WORKER_CRASHED'
  | 'EDDY_TIMEOUT'
  | 'EDDY_JOB_FAILED'
  | 'EDDY_CHECKPOINT_CORRUPT'
  | 'EDDY_CHECKPOINT_INCOMPATIBLE'
  | 'EDDY_CHECKPOINT_IO'
  | 'EDDY_CHECKPOINT_FAILED'
  | 'EDDY_JOB_CONTROL'
  | 'EDDY_CLUSTER'
  | 'EDDY_NO_SLOTS'
  | 'EDDY_SLOTS_CHANGED'
  | 'EDDY_INTERNAL';

/**
 * Whether a restart may help, per code. `'cause'`: the error wraps another one and is
 * retriable as that one is (an EddyError cause), or retriable when the cause is anything else.
 *
 * - Retriable: I/O of sources, sinks and checkpoints, a lost worker, a timeout, a failed
 *   checkpoint, and eddy's own bugs (`EDDY_INTERNAL`: as in Flink, a restart may get past a
 *   transient state).
 * - Not retriable: the same input, job or checkpoint would fail the same way again (a
 *   malformed record, an invalid or non-deterministic job, corrupt or incompatible
 *   checkpoints, a user error marked fatal).
 * - `EDDY_USER_FUNCTION`: retriable unless the user's error is an EddyError that is not
 *   (e.g. a {@link FatalError}). `EDDY_JOB_FAILED`: as its cause.
 */
const RETRIABLE: Readonly<Record<ErrorCode, boolean | 'cause'>> = {
  EDDY_SOURCE_IO: true,
  EDDY_SINK_IO: true,
  EDDY_CHECKPOINT_IO: true,
  EDDY_WORKER_CRASHED: true,
  EDDY_TIMEOUT: true,
  EDDY_CHECKPOINT_FAILED: true,
  EDDY_INTERNAL: true,
  EDDY_USER_FUNCTION: 'cause',
  EDDY_JOB_FAILED: 'cause',
  EDDY_BAD_RECORD: false,
  EDDY_NONDETERMINISTIC_JOB: false,
  EDDY_INVALID_JOB: false,
  EDDY_INVALID_ARGUMENT: false,
  EDDY_INVALID_PARALLELISM: false,
  EDDY_JOB_MODULE: false,
  EDDY_UNHASHABLE_KEY: false,
  EDDY_CHECKPOINT_INCOMPATIBLE: false,
  EDDY_CHECKPOINT_CORRUPT: false,
  EDDY_STATE: false,
  EDDY_WIRE_FORMAT: false,
  EDDY_JOB_CONTROL: false,
  // The master cannot be reached or refused a request: the client reports it.
  EDDY_CLUSTER: false,
  // Waited for task slots past the slot timeout: more waiting is the user's decision.
  EDDY_NO_SLOTS: false,
  // Reactive mode: the slots changed under an attempt; the cluster job starts a new generation
  // at the new parallelism instead of restarting the old one.
  EDDY_SLOTS_CHANGED: false,
  EDDY_FATAL: false,
  // A server that refuses (credentials, a missing stream or table, a setting): a restart
  // meets the same refusal.
  EDDY_CONNECTOR_CONFIG: false,
};

/**
 * The `retriable` flag an error of `code` gets unless its constructor is told otherwise.
 * For the wrapping codes (`EDDY_USER_FUNCTION`, `EDDY_JOB_FAILED`) it follows `cause` when
 * that is an EddyError; an unknown code is not retriable.
 */
export const defaultRetriable = (code: ErrorCode, cause?: unknown): boolean => {
  const r = RETRIABLE[code] ?? false;
  if (r !== 'cause') return r;
  return cause instanceof EddyError ? cause.retriable : true;
};

/** Options of an {@link EddyError}: domain, retriable, cause, subtask. */
export interface EddyErrorOptions {
  domain?: ErrorDomain;
  /** Overrides `defaultRetriable`. */
  retriable?: boolean;
  cause?: unknown;
  /** The operator subtask the error is attributed to. */
  subtask?: SubtaskRef;
}

/** The base of every error eddy throws: a stable `code`, a `domain` and `retriable`. */
export class EddyError extends Error {
  readonly code: ErrorCode;
  readonly domain: ErrorDomain;
  readonly retriable: boolean;
  /** The operator subtask this error is attributed to, once known (see `attributeTo`). */
  readonly subtask?: SubtaskRef;

  constructor(code: ErrorCode, message: string, options: EddyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.domain = options.domain ?? 'internal';
    this.retriable = options.retriable ?? defaultRetriable(code, options.cause);
    if (options.subtask !== undefined) this.subtask = options.subtask;
  }
}

/** A configuration or API argument was invalid; the message says what to do instead. */
export class InvalidArgumentError extends EddyError {
  constructor(message: string, code: ErrorCode = 'EDDY_INVALID_ARGUMENT') {
    super(code, message, { domain: 'user' });
  }
}

/** A key that cannot be hashed stably (e.g. a plain object). */
export class UnhashableKeyError extends EddyError {
  constructor(message: string) {
    super('EDDY_UNHASHABLE_KEY', message, { domain: 'user' });
  }
}

/**
 * Thrown by user code to fail the job at once: no restart is attempted (a restart would fail
 * the same way, e.g. a configuration the job cannot work with).
 */
export class FatalError extends EddyError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('EDDY_FATAL', message, { domain: 'user', retriable: false, cause: options.cause });
  }
}

/** Where an input record came from, for error messages. */
export interface RecordOrigin {
  file: string;
  /** 1-based line number. */
  line: number;
}

/** A malformed input record (bad JSON or CSV). Names the file and the 1-based line. */
export class BadRecordError extends EddyError {
  readonly origin: RecordOrigin;
  constructor(origin: RecordOrigin, reason: string, cause?: unknown) {
    super(
      'EDDY_BAD_RECORD',
      `malformed record in ${origin.file} at line ${origin.line}: ${reason}`,
      {
        domain: 'user',
        cause,
      },
    );
    this.origin = origin;
  }
}

/** Identifies one subtask of one operator, for error messages and metrics. */
export interface SubtaskRef {
  operatorName: string;
  operatorUid: string;
  subtaskIndex: number;
  parallelism: number;
}

export const describeSubtask = (s: SubtaskRef) =>
  `operator '${s.operatorName}' (uid ${s.operatorUid}), subtask ${s.subtaskIndex + 1}/${s.parallelism}`;

/**
 * User code threw. Names the operator, the subtask and the record's position: the
 * 1-based count of records that operator's subtask had received, and a preview of the record.
 * Retriable unless the user's error is an EddyError that is not (e.g. a {@link FatalError}).
 */
export class UserFunctionError extends EddyError {
  declare readonly subtask: SubtaskRef;
  readonly recordPosition: number | undefined;
  /** The failing record, truncated (see {@link previewRecord}), when there was one. */
  readonly recordPreview: string | undefined;
  constructor(
    subtask: SubtaskRef,
    what: string,
    recordPosition: number | undefined,
    cause: unknown,
    recordPreview?: string,
  ) {
    const pos = recordPosition === undefined ? '' : ` at record #${recordPosition}`;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('EDDY_USER_FUNCTION', `${describeSubtask(subtask)} failed in ${what}${pos}: ${reason}`, {
      domain: 'user',
      cause,
      subtask,
    });
    this.recordPosition = recordPosition;
    this.recordPreview = recordPreview;
  }
}

/** Longest record preview kept by {@link previewRecord}. */
export const MAX_RECORD_PREVIEW = 200;

/**
 * A short, safe one-line preview of a record for error messages: JSON (bigints as `123n`),
 * else `String(record)` (e.g. a cyclic object), truncated to `max` characters with `…`.
 * Never throws.
 */
export const previewRecord = (record: unknown, max = MAX_RECORD_PREVIEW): string => {
  let text: string;
  try {
    text =
      JSON.stringify(record, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(record);
  } catch {
    try {
      text = Object.prototype.toString.call(record);
    } catch {
      text = '(unprintable record)';
    }
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

/** The job failed; `cause` is the first error reported. Retriable as its cause is. */
export class JobFailedError extends EddyError {
  constructor(message: string, cause?: unknown, subtask?: SubtaskRef) {
    super('EDDY_JOB_FAILED', message, {
      domain: causeDomain(cause),
      cause,
      ...(subtask === undefined ? {} : { subtask }),
    });
  }
}

const causeDomain = (cause: unknown): ErrorDomain =>
  cause instanceof EddyError ? cause.domain : 'internal';

/** An invariant of eddy itself was violated: a bug, never the user's fault. */
export class InternalError extends EddyError {
  constructor(message: string, cause?: unknown) {
    super('EDDY_INTERNAL', message, { domain: 'internal', cause });
  }
}

/**
 * Attributes `e` to the operator subtask `ref`, once: an EddyError already attributed (its
 * `subtask` is set) is returned as it is, so the operator that really failed stays named; any
 * other error is wrapped in one whose message starts with the subtask, with `e` as cause.
 * An EddyError keeps its code, domain and `retriable`; anything else becomes
 * `EDDY_JOB_FAILED`.
 */
export const attributeTo = (ref: SubtaskRef, e: unknown): EddyError => {
  if (e instanceof EddyError) {
    if (e.subtask !== undefined) return e;
    return new EddyError(e.code, `${describeSubtask(ref)}: ${e.message}`, {
      domain: e.domain,
      retriable: e.retriable,
      cause: e,
      subtask: ref,
    });
  }
  const reason = e instanceof Error ? e.message : String(e);
  return new JobFailedError(`${describeSubtask(ref)}: ${reason}`, e, ref);
};

/**
 * Plain-data form of an error for crossing a thread boundary (structured-clone safe). Keeps
 * the class name, code, domain, `retriable`, stack, the cause chain and the fields of the
 * classes that have them.
 */
export interface SerializedError {
  /** Class name (`UserFunctionError`, ...), or the `name` of a plain error. */
  name: string;
  code: string;
  message: string;
  domain: ErrorDomain;
  retriable: boolean;
  stack?: string | undefined;
  /** True when the original was not an EddyError (rebuilt as a plain Error when a cause). */
  plain?: true | undefined;
  /** The cause: an error serialized in turn, or a non-error cause as a string. */
  cause?: SerializedError | string | undefined;
  subtask?: SubtaskRef | undefined;
  /** UserFunctionError's record position. */
  recordPosition?: number | undefined;
  /** UserFunctionError's record preview. */
  recordPreview?: string | undefined;
  /** BadRecordError's origin. */
  origin?: RecordOrigin | undefined;
}

/** Causes serialized below an error; deeper ones are kept as a one-line string. */
export const MAX_CAUSE_DEPTH = 8;

const causeSummary = (c: unknown): string =>
  c instanceof Error ? `${c.name}: ${c.message}` : String(c);

const serializeAt = (e: unknown, depth: number): SerializedError => {
  let s: SerializedError;
  if (e instanceof EddyError) {
    s = {
      name: e.name,
      code: e.code,
      message: e.message,
      domain: e.domain,
      retriable: e.retriable,
      stack: e.stack,
    };
    if (e.subtask !== undefined) s.subtask = { ...e.subtask };
    if (e instanceof UserFunctionError && e.recordPosition !== undefined) {
      s.recordPosition = e.recordPosition;
    }
    if (e instanceof UserFunctionError && e.recordPreview !== undefined) {
      s.recordPreview = e.recordPreview;
    }
    if (e instanceof BadRecordError) s.origin = { ...e.origin };
  } else if (e instanceof Error) {
    s = {
      name: e.name,
      code: 'EDDY_INTERNAL',
      message: e.message,
      domain: 'internal',
      retriable: defaultRetriable('EDDY_INTERNAL'),
      stack: e.stack,
      plain: true,
    };
  } else {
    return {
      name: 'Error',
      code: 'EDDY_INTERNAL',
      message: String(e),
      domain: 'internal',
      retriable: defaultRetriable('EDDY_INTERNAL'),
      plain: true,
    };
  }
  const cause = (e as Error).cause;
  if (cause !== undefined) {
    s.cause =
      cause instanceof Error && depth < MAX_CAUSE_DEPTH
        ? serializeAt(cause, depth + 1)
        : causeSummary(cause);
  }
  return s;
};

/** Serializes `e` and its cause chain (to {@link MAX_CAUSE_DEPTH} levels). */
export const serializeError = (e: unknown): SerializedError => serializeAt(e, 0);

/** Classes rebuilt by {@link deserializeError}, by class name. */
const CLASSES: Readonly<Record<string, { readonly prototype: EddyError }>> = {
  UserFunctionError,
  BadRecordError,
  JobFailedError,
  InvalidArgumentError,
  UnhashableKeyError,
  InternalError,
  FatalError,
};

/** Writes a readonly field of a rebuilt error (its constructor was not run). */
const setField = (e: EddyError, key: string, value: unknown): void => {
  (e as unknown as Record<string, unknown>)[key] = value;
};

const deserializeCause = (c: SerializedError | string | undefined): unknown => {
  if (c === undefined || typeof c === 'string') return c;
  if (c.plain) {
    const e = new Error(
      c.message,
      c.cause === undefined ? undefined : { cause: deserializeCause(c.cause) },
    );
    e.name = c.name;
    if (c.stack !== undefined) e.stack = c.stack;
    return e;
  }
  return deserializeError(c);
};

/**
 * Rebuilds an error that crossed a thread boundary: the same class (for the EddyError
 * subclasses above; else an EddyError carrying the class name), message, code, domain,
 * `retriable`, stack, fields and cause chain. A plain error at the top becomes an EddyError
 * with code `EDDY_INTERNAL`; plain errors further down the chain stay plain Errors.
 */
export const deserializeError = (s: SerializedError): EddyError => {
  const cause = deserializeCause(s.cause);
  const e = new EddyError(s.code as ErrorCode, s.message, {
    domain: s.domain,
    retriable: s.retriable ?? defaultRetriable(s.code as ErrorCode, cause),
    cause,
    ...(s.subtask === undefined ? {} : { subtask: s.subtask }),
  });
  const cls = Object.hasOwn(CLASSES, s.name) ? CLASSES[s.name] : undefined;
  const fits =
    cls !== undefined &&
    (s.name !== 'UserFunctionError' || s.subtask !== undefined) &&
    (s.name !== 'BadRecordError' || s.origin !== undefined);
  if (fits) {
    Object.setPrototypeOf(e, cls.prototype);
    if (s.name === 'UserFunctionError') {
      setField(e, 'recordPosition', s.recordPosition);
      setField(e, 'recordPreview', s.recordPreview);
    }
    if (s.name === 'BadRecordError') setField(e, 'origin', s.origin);
  }
  e.name = s.name;
  if (s.stack) e.stack = s.stack;
  return e;
};
