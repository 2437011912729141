/**
 * Small durable-write helpers. Hazard: a rename or a new file is durable only once its
 * *directory* is fsynced; forgetting that is how "complete" checkpoints vanish after a power cut.
 */
import { open, stat } from 'node:fs/promises';
import { errnoCode } from './errors.js';

// Platforms (Windows) and some file systems cannot fsync a directory; there the rename is as
// durable as the platform makes it and there is nothing more to do.
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'ENOTSUP', 'EBADF']);

/** fsyncs a directory, so the entries created or renamed in it survive a crash. */
export const fsyncDir = async (dir: string): Promise<void> => {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has(errnoCode(e) ?? '')) throw e;
  } finally {
    await fh?.close().catch(() => {});
  }
};

/** Writes `bytes` to `path` (created or truncated) and fsyncs the file. */
export const writeFileDurably = async (path: string, bytes: Uint8Array): Promise<void> => {
  const fh = await open(path, 'w');
  try {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, done);
      done += bytesWritten;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
};

/** The size of the file at `path`, or undefined if nothing is there; throws other errors. */
export const fileSize = async (path: string): Promise<number | undefined> => {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
};
