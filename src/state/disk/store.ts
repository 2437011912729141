/**
 * The lmdb environment of one disk backend: opening it in its own directory, the checks that
 * its files are still the ones it opened, typed errors naming the path and the subtask, and
 * closing and deleting it.
 *
 * It is a local working copy (durability comes from checkpoints): `noSync` (no fsync at all),
 * `noMemInit`, no cache, no compression, no `useWritemap` (writes go through lmdb's own pages,
 * so a stray write cannot corrupt the map, and the page cache bounds RSS).
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { EddyError } from '../../core/errors.js';
import { makeDirs } from '../../core/fs.js';

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

export type Db = RootDatabase<Buffer, Buffer>;

/** One opened environment and what identifies its data file. */
export class Store {
  readonly db: Db;
  private readonly dataFile: string;
  private readonly ino: number;
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly owner: StoreOwner,
  ) {
    try {
      makeDirs(dir);
      // The store never outlives its backend: files left in the directory (a process that
      // died before disposing) are stale and must not be read as state.
      for (const f of ['data.mdb', 'lock.mdb']) rmSync(join(dir, f), { force: true });
    } catch (error) {
      throw storeError('cannot create the directory', dir, owner, error, false);
    }
    try {
      this.db = open<Buffer, Buffer>({
        path: dir,
        keyEncoding: 'binary',
        encoding: 'binary',
        noSync: true,
        noMemInit: true,
        overlappingSync: false,
        cache: false,
        compression: false,
        // Maps the file in chunks as it grows: without it, lmdb-js grows the map by doubling
        // and the old maps stay resident (measured: RSS of the file's pages 2.4x its size).
        remapChunks: true,
      });
    } catch (error) {
      throw storeError('cannot open the store', dir, owner, error, false);
    }
    this.dataFile = join(dir, 'data.mdb');
    try {
      this.ino = statSync(this.dataFile).ino;
    } catch (error) {
      this.closeQuietly();
      throw storeError('cannot open the store', dir, owner, error, false);
    }
  }

  /**
   * Throws if the store's data file is gone or replaced (its directory deleted under a running
   * job): lmdb would keep working on the unlinked file and lose it at the end. One stat.
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
    try {
      void this.db.close().catch(() => {});
    } catch {
      // closing a store that failed is best effort
    }
  }
}
