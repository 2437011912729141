/**
 * One error hierarchy with stable codes. `domain` says whose fault it is (the user's job or
 * input, an external system, or eddy itself); `retriable` says whether a restart may help.
 */
export type ErrorDomain = 'user' | 'external' | 'internal';

export type ErrorCode =
  | 'EDDY_INVALID_ARGUMENT'
  | 'EDDY_INVALID_PARALLELISM'
  | 'EDDY_UNHASHABLE_KEY'
  | 'EDDY_INVALID_JOB'
  | 'EDDY_JOB_MODULE'
  | 'EDDY_NONDETERMINISTIC_JOB'
  | 'EDDY_BAD_RECORD'
  | 'EDDY_USER_FUNCTION'
  | 'EDDY_STATE'
  | 'EDDY_SOURCE_IO'
  | 'EDDY_SINK_IO'
  | 'EDDY_WIRE_FORMAT'
  | 'EDDY_WORKER_CRASHED'
  | 'EDDY_JOB_FAILED'
  | 'EDDY_CHECKPOINT_CORRUPT'
  | 'EDDY_CHECKPOINT_INCOMPATIBLE'
  | 'EDDY_CHECKPOINT_IO'
  | 'EDDY_CHECKPOINT_FAILED'
  | 'EDDY_JOB_CONTROL'
  | 'EDDY_INTERNAL';

export interface EddyErrorOptions {
  domain?: ErrorDomain;
  retriable?: boolean;
  cause?: unknown;
}

export class EddyError extends Error {
  readonly code: ErrorCode;
  readonly domain: ErrorDomain;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: EddyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.domain = options.domain ?? 'internal';
    this.retriable = options.retriable ?? false;
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
 */
export class UserFunctionError extends EddyError {
  readonly subtask: SubtaskRef;
  readonly recordPosition: number | undefined;
  constructor(
    subtask: SubtaskRef,
    what: string,
    recordPosition: number | undefined,
    cause: unknown,
  ) {
    const pos = recordPosition === undefined ? '' : ` at record #${recordPosition}`;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('EDDY_USER_FUNCTION', `${describeSubtask(subtask)} failed in ${what}${pos}: ${reason}`, {
      domain: 'user',
      cause,
    });
    this.subtask = subtask;
    this.recordPosition = recordPosition;
  }
}

/** The job failed; `cause` is the first error reported. */
export class JobFailedError extends EddyError {
  constructor(message: string, cause?: unknown) {
    super('EDDY_JOB_FAILED', message, { domain: causeDomain(cause), cause });
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

/** Plain-data form of an error for crossing a thread boundary. */
export interface SerializedError {
  name: string;
  code: string;
  message: string;
  domain: ErrorDomain;
  stack?: string | undefined;
}

export const serializeError = (e: unknown): SerializedError => {
  if (e instanceof EddyError) {
    return { name: e.name, code: e.code, message: e.message, domain: e.domain, stack: e.stack };
  }
  if (e instanceof Error) {
    return {
      name: e.name,
      code: 'EDDY_INTERNAL',
      message: e.message,
      domain: 'internal',
      stack: e.stack,
    };
  }
  return { name: 'Error', code: 'EDDY_INTERNAL', message: String(e), domain: 'internal' };
};

/** Rebuilds an error that crossed a thread boundary, keeping its code and domain. */
export const deserializeError = (s: SerializedError): EddyError => {
  const e = new EddyError(s.code as ErrorCode, s.message, { domain: s.domain });
  e.name = s.name;
  if (s.stack) e.stack = s.stack;
  return e;
};
