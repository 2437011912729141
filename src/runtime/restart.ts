/**
 * Whether and when a failed job restarts: pure decisions, no I/O. Only retriable failures
 * restart (I/O, a lost worker, a timeout, eddy's own bugs, user code that threw an ordinary
 * error); the others fail the job at once, naming the code that made them final (a malformed
 * record without a dead-letter sink, a non-deterministic job, a user `FatalError`, ...).
 */
import { EddyError, type ErrorCode } from '../core/errors.js';

/** How a failed job restarts: not at all, after a fixed delay, or with exponential backoff. */
export type RestartStrategy =
  | { readonly kind: 'none' }
  | { readonly kind: 'fixed-delay'; readonly attempts: number; readonly delayMs: number }
  | {
      readonly kind: 'exponential-backoff';
      readonly attempts: number;
      readonly initialDelayMs: number;
      readonly maxDelayMs: number;
    };

export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number }
  | { readonly restart: false; readonly reason: string };

/** Codes that wrap another error and are retriable only as far as that one is. */
const WRAPPING: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'EDDY_JOB_FAILED',
  'EDDY_USER_FUNCTION',
]);

/** How many wrapping levels {@link nonRetriableCause} follows (as deep as serialization keeps). */
const MAX_DEPTH = 8;

/**
 * The error in `e`'s chain that makes it not retriable, or undefined when a restart may help.
 * Rule: an error whose own `retriable` is false is final. `EDDY_JOB_FAILED` and
 * `EDDY_USER_FUNCTION` wrap another failure: when their cause is an EddyError, it must be
 * retriable too (so user code that threw a `FatalError`, or a job that failed because of a
 * malformed record, is final however it was wrapped). Any other error goes by its own flag;
 * a cause that is not an EddyError says nothing. Of several final errors in the chain, the
 * innermost is returned: it names the real reason (`EDDY_FATAL` rather than the
 * `EDDY_USER_FUNCTION` around it).
 */
export const nonRetriableCause = (e: EddyError): EddyError | undefined => {
  let culprit: EddyError | undefined;
  let current: EddyError = e;
  for (let depth = 0; ; depth++) {
    if (!current.retriable) culprit = current;
    if (!WRAPPING.has(current.code) || depth >= MAX_DEPTH) return culprit;
    const cause: unknown = current.cause;
    if (!(cause instanceof EddyError)) return culprit;
    current = cause;
  }
};

/** Whether a restart may help with `e` (see {@link nonRetriableCause}). */
export const isRetriable = (e: EddyError): boolean => nonRetriableCause(e) === undefined;

/** Why `e` is final, naming the code of the error that decided it. */
const notRetriableReason = (e: EddyError, culprit: EddyError): string =>
  culprit === e || culprit.code === e.code
    ? `${e.code} is not retriable: a restart would fail the same way`
    : `${e.code} is not retriable (caused by ${culprit.code}): a restart would fail the same way`;

/**
 * Restart after `error`, with `restartsSoFar` restarts already made? Not when the error is not
 * retriable (the reason names its code), when the strategy is `none`, or when its attempts are
 * used up. Delays: fixed, or `initialDelayMs * 2^restartsSoFar` capped at `maxDelayMs`.
 */
export const decideRestart = (
  error: EddyError,
  strategy: RestartStrategy,
  restartsSoFar: number,
): RestartDecision => {
  const culprit = nonRetriableCause(error);
  if (culprit !== undefined) return { restart: false, reason: notRetriableReason(error, culprit) };
  if (strategy.kind === 'none') {
    return { restart: false, reason: "restarts are disabled (restart strategy 'none')" };
  }
  if (restartsSoFar >= strategy.attempts) {
    return {
      restart: false,
      reason: `no restart attempts left (${restartsSoFar} of ${strategy.attempts} used)`,
    };
  }
  if (strategy.kind === 'fixed-delay') return { restart: true, delayMs: strategy.delayMs };
  return {
    restart: true,
    delayMs: Math.min(strategy.maxDelayMs, strategy.initialDelayMs * 2 ** restartsSoFar),
  };
};
