/**
 * The store of one disk backend (`lsm/`): opening it in its own directory, the checks that
 * its files are still the ones it opened, typed errors naming the path and the subtask, and
 * closing and deleting it. It is a local working copy: nothing is synced to disk, durability
 * comes from checkpoints.
 */
import { closeSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EddyError } from '../../core/errors.js';
import { makeDirs } from '../../core/fs.js';
import { type LsmOptions, LsmStore } from './lsm/index.js';

/** Who owns a store, for error messages. */
export interface StoreOwner {
  readonly operatorUid?: string;
  readonly subtaskIndex?: number;
}

const ownerText = (o: StoreOwner): string =>
  o.operatorUid === undefined
    ? 'a keyed operator'
    : `operator '${o.operatorUid}'${o.subtaskIndex === undefined ? '' : ` subtask ${o.subtaskIndex}`}`;

const causeText = (cause: unknown): string =>
  cause instanceof Error ? cause.message : String(cause);

/**
 * An error of the local store. Retriable: the runtime restarts the job from its last
 * checkpoint (nothing is lost: the store is only a working copy), except for a store that
 * cannot be opened at all (a configuration problem a restart does not fix).
 */
export const storeError = (
  what: string,
  dir: string,
  owner: StoreOwner,
  cause: unknown,
  retriable: boolean,
): EddyError =>
  new EddyError(
    'EDDY_STATE',
    `disk state store of ${ownerText(owner)} at ${dir}: ${what}: ${causeText(cause)}`,
    { domain: 'external', retriable, cause },
  );

export type Db = LsmStore;

/** Tunables of the store (tests use small ones to reach every path). */
export type StoreTuning = Omit<LsmOptions, 'dir'>;

/** A file made at open whose inode identifies the directory the store writes to. */
const MARKER = 'STORE';
/** Files of a store: its marker, its runs, and an older version's lmdb files. */
const STORE_FILE = /^(STORE|run-\d+\.dat|data\.mdb|lock\.mdb)$/;

/** One opened environment and what identifies its data file. */
export class Store {
  readonly db: Db;
  private readonly dataFile: string;
  private readonly ino: number;
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly owner: StoreOwner,
    tuning: StoreTuning = {},
  ) {
    try {
      // The store never outlives its backend: files left in the directory (a process that
      // died before disposing) are stale and must not be read as state.
      makeDirs(dir);
      for (const f of readdirSync(dir)) {
        if (STORE_FILE.test(f)) rmSync(join(dir, f), { force: true });
      }
    } catch (error) {
      throw storeError('cannot create the directory', dir, owner, error, false);
    }
    this.dataFile = join(dir, MARKER);
    try {
      closeSync(openSync(this.dataFile, 'w'));
      this.ino = statSync(this.dataFile).ino;
    } catch (error) {
      throw storeError('cannot open the store', dir, owner, error, false);
    }
    this.db = new LsmStore({ ...tuning, dir });
  }

  /**
   * Throws if the store's directory is gone or replaced (deleted under a running job): open
   * run files would stay readable, but new ones could not be written, or would be lost. One
   * stat.
   */
  check(): void {
    let ino: number | undefined;
    try {
      ino = statSync(this.dataFile).ino;
    } catch {
      ino = undefined;
    }
    if (ino !== this.ino) {
      throw storeError(
        'the store',
        this.dir,
        this.owner,
        `its files were deleted or replaced while the job was running (${this.dataFile})`,
        true,
      );
    }
  }

  /** Wraps a failed write (full disk, I/O error) in a retriable store error. */
  writeFailed(error: unknown): EddyError {
    if (error instanceof EddyError) return error;
    return storeError('a write failed', this.dir, this.owner, error, true);
  }

  /** Closes the environment and deletes the directory; idempotent, never throws. */
  closeAndDelete(): void {
    if (this.closed) return;
    this.closeQuietly();
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // A leftover working copy is harmless: the state directory is cleaned with the job.
    }
  }

  private closeQuietly(): void {
    this.closed = true;
    this.db.close();
  }
}
