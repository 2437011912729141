/**
 * Errors of the NATS connectors: a server that refuses (no such stream, no subjects, bad
 * credentials, JetStream off) is `EDDY_CONNECTOR_CONFIG` (a restart meets the same refusal);
 * a server that is away or slow is `EDDY_SOURCE_IO` / `EDDY_SINK_IO` (retriable). Messages
 * name the server, the stream or subject, and the fix.
 */
import { EddyError } from '../../core/errors.js';

/** `'source'` or `'sink'`: which I/O code an outage gets. */
export type NatsRole = 'source' | 'sink';

/** The servers as one string for messages. */
export const describeServers = (servers: string | readonly string[]): string =>
  typeof servers === 'string' ? servers : servers.join(',');

/** A refusal: not retriable. `fix` says what to change. */
export const configError = (
  role: NatsRole,
  server: string,
  what: string,
  fix: string,
  cause?: unknown,
): EddyError =>
  new EddyError('EDDY_CONNECTOR_CONFIG', `nats ${role}: server ${server} ${what}; ${fix}`, {
    domain: 'external',
    cause,
  });

/** An outage or I/O failure: retriable (the job restarts from its last checkpoint). */
export const ioError = (role: NatsRole, server: string, what: string, cause?: unknown) =>
  new EddyError(
    role === 'source' ? 'EDDY_SOURCE_IO' : 'EDDY_SINK_IO',
    `nats ${role}: server ${server}: ${what}${cause === undefined ? '' : `: ${reason(cause)}`}`,
    { domain: 'external', cause },
  );

/** The message of anything thrown. */
export const reason = (e: unknown): string => (e instanceof Error ? e.message : String(e));

const named = (e: unknown, ...names: string[]): boolean =>
  e instanceof Error && names.includes(e.name);

/** Credentials refused or expired, or a permission missing: fixing it takes the user. */
export const isAuthFailure = (e: unknown): boolean =>
  named(e, 'AuthorizationError', 'UserAuthenticationExpiredError', 'PermissionViolationError') ||
  /authorization|permissions? violation|authentication/i.test(reason(e));

/** JetStream answered that the stream does not exist. */
export const isStreamNotFound = (e: unknown): boolean =>
  named(e, 'StreamNotFoundError') || /stream not found/i.test(reason(e));

/** JetStream answered that the consumer does not exist (deleted, or lost in a restart). */
export const isConsumerNotFound = (e: unknown): boolean =>
  named(e, 'ConsumerNotFoundError') || /consumer not found/i.test(reason(e));

/** The server runs without JetStream (`nats-server -js` enables it). */
export const isJetStreamDisabled = (e: unknown): boolean =>
  named(e, 'JetStreamNotEnabled') || /jetstream not enabled/i.test(reason(e));
