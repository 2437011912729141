/**
 * Every name and path of the checkpoint layout is built here, so the layout (types.ts) has one
 * owner and no other module concatenates storage paths by hand. Pure functions, no I/O.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** The file whose presence makes a checkpoint directory complete. */
export const METADATA_FILE = '_metadata';
/** Written first by commit, renamed to {@link METADATA_FILE}; never read as metadata. */
export const METADATA_TMP_FILE = '_metadata.tmp';

const CHECKPOINT_DIR = /^chk-(0|[1-9][0-9]{0,15})$/;

/** `chk-<id>`: the directory name of checkpoint `id` under the storage base. */
export const checkpointDirName = (id: number): string => `chk-${id}`;

/** The id in a `chk-<id>` directory name, or undefined for any other name. */
export const parseCheckpointDirName = (name: string): number | undefined => {
  const m = CHECKPOINT_DIR.exec(name);
  if (m === null) return undefined;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) ? id : undefined;
};

/**
 * `savepoint-<jobName>-<id>-<yyyymmddThhmmss>` (UTC). The job name is made file-name safe
 * ({@link safeFileComponent}).
 */
export const savepointDirName = (jobName: string, id: number, at: Date): string =>
  `savepoint-${safeFileComponent(jobName)}-${id}-${compactUtc(at)}`;

const SAVEPOINT_DIR = /^savepoint-.+-(0|[1-9][0-9]{0,15})-\d{8}T\d{6}$/;

/** The checkpoint id in a {@link savepointDirName}, or undefined for any other name. */
export const parseSavepointDirName = (name: string): number | undefined => {
  const m = SAVEPOINT_DIR.exec(name);
  if (m === null) return undefined;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) ? id : undefined;
};

const compactUtc = (d: Date): string => {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const date = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`;
  return `${date}T${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
};

/** `<uid>-<subtask>.keyed`: keyed state of one subtask. */
export const keyedStateFileName = (uid: string, subtaskIndex: number): string =>
  `${safeFileComponent(uid)}-${subtaskIndex}.keyed`;

/** `<uid>-<subtask>.opstate`: operator list state of one subtask. */
export const operatorStateFileName = (uid: string, subtaskIndex: number): string =>
  `${safeFileComponent(uid)}-${subtaskIndex}.opstate`;

const MAX_COMPONENT = 100;

/**
 * A user-given name (operator uid, job name) as a portable file-name component: ASCII letters,
 * digits, `_` and `-` stay; every other UTF-16 code unit becomes `%xxxx`, so distinct names stay
 * distinct and nothing can escape the directory ('/', '..'). Over-long results are cut and
 * suffixed with a CRC-32 of the original (hazard: then two names *could* collide; uids that
 * long are not expected).
 */
export const safeFileComponent = (name: string): string => {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const plain = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    out += plain || c === 95 || c === 45 ? name[i] : `%${c.toString(16).padStart(4, '0')}`;
  }
  if (out === '') return '%';
  if (out.length <= MAX_COMPONENT) return out;
  const tag = crc32(name).toString(16).padStart(8, '0');
  return `${out.slice(0, MAX_COMPONENT - 9)}~${tag}`;
};

/**
 * True for a relative path that stays inside its directory: '/'-separated, no empty, '.' or
 * '..' segment, no backslash or NUL, not absolute. Metadata from disk is untrusted: a savepoint
 * naming `../../etc/passwd` must not make a restore read (or retain delete) outside it.
 */
export const isContainedRelativePath = (file: string): boolean => {
  if (file === '' || file.includes('\\') || file.includes('\0')) return false;
  return file.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
};

/** The absolute-or-relative path of `file` (a contained relative path) inside `dir`. */
export const fileInDir = (dir: string, file: string): string => join(dir, ...file.split('/'));

/**
 * The directory of shared files, beside the `chk-<id>` directories: the blocks of incremental
 * checkpoints, which later checkpoints keep referring to (docs/ARCHITECTURE.md, "Incremental
 * checkpoints"). Only retention deletes in it, and only files no retained checkpoint refers to.
 */
export const SHARED_DIR = 'blocks';

/**
 * `<uid>-<subtask>-<checkpointId>-<tag>.keyed`: the keyed blocks one subtask wrote for one
 * incremental checkpoint. The random tag keeps the files of two attempts that reach the same
 * checkpoint id apart (a crashed attempt's files are never overwritten, only collected).
 */
export const sharedKeyedFileName = (uid: string, subtaskIndex: number, checkpointId: number) =>
  `${safeFileComponent(uid)}-${subtaskIndex}-${checkpointId}-${randomBytes(4).toString('hex')}.keyed`;

/** The checkpoint id in a {@link sharedKeyedFileName}, or undefined for any other name. */
export const parseSharedFileCheckpointId = (name: string): number | undefined => {
  const m = /-(\d{1,15})-[0-9a-f]{8}\.keyed$/.exec(name);
  return m ? Number(m[1]) : undefined;
};

/** How a checkpoint's metadata names shared file `name`: relative to its own directory. */
export const sharedFileRef = (name: string): string => `../${SHARED_DIR}/${name}`;

/**
 * True for a reference made by {@link sharedFileRef}: exactly `../blocks/<name>` with a plain
 * name. The only way metadata may point outside its checkpoint directory.
 */
export const isSharedFileRef = (ref: string): boolean => {
  const prefix = `../${SHARED_DIR}/`;
  if (!ref.startsWith(prefix)) return false;
  const name = ref.slice(prefix.length);
  return isContainedRelativePath(name) && !name.includes('/');
};

/** The shared file name of a reference accepted by {@link isSharedFileRef}. */
export const sharedFileName = (ref: string): string => ref.slice(`../${SHARED_DIR}/`.length);
