/**
 * The local job registry: one JSON file per job under `<home>/jobs`, so that other shells
 * can find running jobs and their control sockets.
 *
 * Single writer: only the job's own process writes its entry (register, update, mark
 * ended). Readers never write back; in particular `crashed` is derived on every read and
 * never persisted, so a slow-starting job is not overwritten by a concurrent `eddy list`.
 */
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import { probeSocket } from './client.js';
import { eddyHome, jobsDir } from './paths.js';
import type { JobEntry, ListedJob } from './types.js';

export interface JobRegistryOptions {
  /** How long a liveness probe of a control socket may take before it counts as "alive". */
  readonly probeTimeoutMs?: number | undefined;
}

/** Fields a job may change after registering. */
export type JobEntryPatch = Partial<Omit<JobEntry, 'id'>>;

const SAFE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const ENTRY_SUFFIX = '.json';

/** Local registry of jobs under `<home>/jobs` (home: `$EDDY_HOME`, default `~/.eddy`). */
export class JobRegistry {
  readonly home: string;
  readonly dir: string;
  private readonly probeTimeoutMs: number;

  constructor(home: string = eddyHome(), options: JobRegistryOptions = {}) {
    this.home = home;
    this.dir = jobsDir(home);
    this.probeTimeoutMs = options.probeTimeoutMs ?? 1000;
  }

  /**
   * Writes a new entry. Synchronous, like `update`, so that a job can record its end from a
   * process 'exit' handler.
   */
  register(entry: JobEntry): void {
    checkId(entry.id);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.write(entry);
  }

  /** Merges `patch` into the entry of job `id` and returns the new entry. */
  update(id: string, patch: JobEntryPatch): JobEntry {
    const current = this.read(id);
    if (!current) throw unknownJob(id);
    const next: JobEntry = { ...current, ...patch, id: current.id };
    this.write(next);
    return next;
  }

  /** Removes the entry of job `id` (no error if there is none). */
  remove(id: string): void {
    checkId(id);
    rmSync(this.file(id), { force: true });
  }

  /**
   * All entries, oldest first. An entry claiming running/stopping whose process is gone or
   * whose control socket refuses connections is reported as `crashed`. Unreadable files are
   * skipped: they are not jobs anyone can control, and `eddy list` must keep working.
   */
  async list(): Promise<ListedJob[]> {
    const entries = this.ids()
      .map((id) => this.read(id))
      .filter((e): e is JobEntry => e !== undefined);
    const listed = await Promise.all(entries.map((e) => this.withLiveness(e)));
    return listed.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /**
   * The entry of a job by its id or a unique prefix of it (like git). An exact id wins over
   * longer ids it is a prefix of. Throws `EDDY_JOB_CONTROL` for unknown or ambiguous ids.
   */
  async get(idOrPrefix: string): Promise<ListedJob> {
    const id = this.resolveId(idOrPrefix);
    const entry = this.read(id);
    if (!entry) throw unknownJob(idOrPrefix); // removed since resolveId
    return this.withLiveness(entry);
  }

  /** The full id for an id or unique id prefix. */
  resolveId(idOrPrefix: string): string {
    if (idOrPrefix.length === 0) {
      throw new EddyError('EDDY_JOB_CONTROL', 'job id is empty', { domain: 'user' });
    }
    const ids = this.ids();
    if (ids.includes(idOrPrefix)) return idOrPrefix;
    const matches = ids.filter((id) => id.startsWith(idOrPrefix));
    const [only, ...rest] = matches;
    if (only === undefined) throw unknownJob(idOrPrefix);
    if (rest.length > 0) {
      throw new EddyError(
        'EDDY_JOB_CONTROL',
        `job id '${idOrPrefix}' is ambiguous: it matches ${matches.join(', ')}; give more characters`,
        { domain: 'user' },
      );
    }
    return only;
  }

  /**
   * Removes entries of jobs that ended (or crashed) at least `olderThanMs` ago; a crashed
   * job's age counts from the last write of its entry. Returns the removed ids.
   */
  async prune(options: { olderThanMs: number; now?: number }): Promise<string[]> {
    const now = options.now ?? Date.now();
    const removed: string[] = [];
    for (const job of await this.list()) {
      if (job.status === 'running' || job.status === 'stopping') continue;
      const endedAt = job.endedAt ? Date.parse(job.endedAt) : this.mtime(job.id);
      if (endedAt === undefined || now - endedAt < options.olderThanMs) continue;
      this.remove(job.id);
      // The socket of a crashed job lingers; it refused connections, so no one owns it.
      if (job.status === 'crashed') rmSync(job.socket, { force: true });
      removed.push(job.id);
    }
    return removed;
  }

  private async withLiveness(entry: JobEntry): Promise<ListedJob> {
    if (entry.status !== 'running' && entry.status !== 'stopping') return entry;
    // Both checks: a dead pid may have been reused by another process, and a live pid says
    // nothing about the socket; the socket alone cannot tell "gone" from "never started".
    const alive =
      isProcessAlive(entry.pid) && (await probeSocket(entry.socket, this.probeTimeoutMs)) !== false;
    return alive ? entry : { ...entry, status: 'crashed' };
  }

  private ids(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    // Temporary files start with '.' (see write), which SAFE_ID rejects: never entries.
    return names
      .filter((n) => n.endsWith(ENTRY_SUFFIX))
      .map((n) => n.slice(0, -ENTRY_SUFFIX.length))
      .filter((id) => SAFE_ID.test(id));
  }

  private read(id: string): JobEntry | undefined {
    checkId(id);
    let text: string;
    try {
      text = readFileSync(this.file(id), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const entry = JSON.parse(text) as JobEntry;
      return isEntry(entry) && entry.id === id ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Atomic replace: write a temporary file in the same directory, then rename over the
   * entry, so readers see the old or the new entry and never a torn one. A crash between
   * the two leaves only a dot-file that readers ignore.
   */
  private write(entry: JobEntry): void {
    const tmp = join(this.dir, `.${entry.id}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      writeFileSync(tmp, `${JSON.stringify(entry, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, this.file(entry.id));
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new EddyError(
        'EDDY_JOB_CONTROL',
        `cannot write job registry entry ${this.file(entry.id)}: ${(e as Error).message}`,
        { domain: 'external', cause: e },
      );
    }
  }

  private file(id: string): string {
    return join(this.dir, `${id}${ENTRY_SUFFIX}`);
  }

  private mtime(id: string): number | undefined {
    try {
      return statSync(this.file(id)).mtimeMs;
    } catch {
      return undefined;
    }
  }
}

/** `process.kill(pid, 0)` probes without signalling: ESRCH means gone, EPERM means alive. */
export const isProcessAlive = (pid: number): boolean => {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Ids become file names: no separators, no leading dot (dot-files are temporaries). */
const checkId = (id: string) => {
  if (!SAFE_ID.test(id)) {
    throw new InvalidArgumentError(
      `job id '${id}' may only contain letters, digits, '.', '_' and '-' and must not start with '.'`,
    );
  }
};

const isEntry = (v: JobEntry): boolean =>
  v !== null &&
  typeof v === 'object' &&
  typeof v.id === 'string' &&
  typeof v.name === 'string' &&
  typeof v.pid === 'number' &&
  typeof v.status === 'string' &&
  typeof v.parallelism === 'number' &&
  typeof v.startedAt === 'string' &&
  typeof v.socket === 'string';

const unknownJob = (id: string) =>
  new EddyError('EDDY_JOB_CONTROL', `no job with id '${id}' (eddy list shows the known jobs)`, {
    domain: 'user',
  });
