/**
 * The checkpoint layer's errors. Every message names the file or directory concerned, so an
 * operator can find the broken checkpoint without a debugger.
 *
 * - `EDDY_CHECKPOINT_CORRUPT`: bytes on disk are not what was written (CRC mismatch, truncated
 *   or missing file, malformed metadata). Not retriable: reading again gives the same bytes;
 *   resume falls back to an older checkpoint.
 * - `EDDY_CHECKPOINT_INCOMPATIBLE`: written by an eddy with another format version.
 * - `EDDY_CHECKPOINT_IO`: the file system refused (full, read-only, permissions). Retriable:
 *   a later checkpoint may succeed once the operator frees space.
 */
import { EddyError } from '../core/errors.js';

/** `<file> is corrupt: <what>`. */
export const corruptError = (file: string, what: string, cause?: unknown): EddyError =>
  new EddyError('EDDY_CHECKPOINT_CORRUPT', `checkpoint file ${file} is corrupt: ${what}`, {
    domain: 'external',
    cause,
  });

/** A file that the metadata names does not exist. */
export const missingFileError = (file: string, cause?: unknown): EddyError =>
  new EddyError(
    'EDDY_CHECKPOINT_CORRUPT',
    `checkpoint file ${file} is missing (the checkpoint is incomplete or was partly deleted)`,
    { domain: 'external', cause },
  );

const EXPLAIN: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a component of the path is a file, not a directory',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EIO: 'I/O error',
  EMFILE: 'too many open files',
};

/** The errno code of a Node fs error, if any. */
export const errnoCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/** `cannot <action> <path>: <CODE> (<explanation>)`, for any fs failure. */
export const ioError = (action: string, path: string, cause: unknown): EddyError => {
  if (cause instanceof EddyError) return cause;
  const code = errnoCode(cause);
  const reason =
    code === undefined
      ? String((cause as Error | undefined)?.message ?? cause)
      : `${code}${EXPLAIN[code] === undefined ? '' : ` (${EXPLAIN[code]})`}`;
  return new EddyError('EDDY_CHECKPOINT_IO', `cannot ${action} ${path}: ${reason}`, {
    domain: 'external',
    retriable: true,
    cause,
  });
};

/** How a 32-bit checksum is shown in messages. */
export const hex32 = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** A block whose CRC matched but whose content is not the expected shape (a writer bug). */
export const malformedBlockError = (where: string, reason: string, cause?: unknown): EddyError =>
  new EddyError('EDDY_CHECKPOINT_CORRUPT', `${where} is malformed: ${reason}`, {
    domain: 'internal',
    cause,
  });
