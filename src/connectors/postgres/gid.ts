/**
 * Global transaction identifiers (gids) of the PostgreSQL sink's prepared transactions:
 *
 *   eddy:<prefix>:<uid>:<subtask>:<checkpoint>
 *
 * `prefix` names the job (the sink's `transactionPrefix` option), `uid` the sink operator.
 * Both are stable across restarts, `--resume` and `--from-savepoint` (a job id is not: a
 * resumed job gets a new one), so a restored sink finds the prepared transactions of the
 * run before it by the owner prefix `eddy:<prefix>:<uid>:`. The components are
 * percent-encoded (every character but `A-Z a-z 0-9 . _ -`), so a `:` inside a name never
 * makes one sink's gids look like another's, and the gid is safe as a SQL literal.
 */
import { InvalidArgumentError } from '../../core/errors.js';

/** What every gid of an eddy sink starts with (find them: `pg_prepared_xacts`). */
export const GID_MAGIC = 'eddy';

/** PostgreSQL's GIDSIZE is 200 bytes including the terminating NUL. */
export const MAX_GID_LENGTH = 199;

/** A parsed gid of one sink (its owner prefix already matched). */
export interface GidParts {
  readonly subtask: number;
  readonly checkpointId: number;
}

const encodeComponent = (s: string): string =>
  Array.from(Buffer.from(s, 'utf8'))
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9._-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');

/**
 * The prefix every gid of one sink starts with, ending in `:`.
 *
 * @example
 * gidOwnerPrefix('orders-job', 'pg-sink'); // 'eddy:orders-job:pg-sink:'
 */
export const gidOwnerPrefix = (prefix: string, uid: string): string => {
  if (prefix === '' || uid === '') {
    throw new InvalidArgumentError('PostgreSQL sink: transaction prefix and uid must not be empty');
  }
  return `${GID_MAGIC}:${encodeComponent(prefix)}:${encodeComponent(uid)}:`;
};

/** The gid of subtask `subtask`'s transaction for checkpoint `checkpointId`. */
export const formatGid = (owner: string, subtask: number, checkpointId: number): string =>
  `${owner}${subtask}:${checkpointId}`;

/**
 * Fails early when the longest gid this sink could produce would not fit PostgreSQL's
 * limit (a PREPARE would fail at the first checkpoint instead).
 */
export const checkGidLength = (owner: string): void => {
  const longest = formatGid(owner, 99_999, Number.MAX_SAFE_INTEGER);
  if (longest.length > MAX_GID_LENGTH) {
    throw new InvalidArgumentError(
      `PostgreSQL sink: transaction ids '${owner}…' would exceed PostgreSQL's ${MAX_GID_LENGTH} ` +
        'characters: give a shorter transactionPrefix or sink uid',
    );
  }
};

/**
 * The subtask and checkpoint of a gid of the sink with owner prefix `owner`, or undefined
 * when the gid is not one of its gids (another sink, another job, or not eddy's).
 */
export const parseGid = (owner: string, gid: string): GidParts | undefined => {
  if (!gid.startsWith(owner)) return undefined;
  const m = /^(0|[1-9][0-9]{0,8}):(0|[1-9][0-9]{0,15})$/.exec(gid.slice(owner.length));
  if (m === null) return undefined;
  const checkpointId = Number(m[2]);
  if (!Number.isSafeInteger(checkpointId)) return undefined;
  return { subtask: Number(m[1]), checkpointId };
};
