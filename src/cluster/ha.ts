/**
 * The master's HA directory: one file per unfinished job, `<dir>/jobs/<jobId>.json`, holding
 * what was submitted (the bundle included). Written when a job is submitted, removed when it
 * ends; a master started on the same directory resumes every job it finds (master.ts). The
 * job's state is not here: it is in the job's checkpoint directory, which every process shares.
 *
 * Hazard: two masters on one HA directory would both resume its jobs. Run one master per
 * directory (Kubernetes: one replica with the Recreate strategy, see docs/DEPLOY.md).
 */

import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EddyError } from '../core/errors.js';
import type { SubmitSpec } from './messages.js';

export class HaStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  private file(jobId: string): string {
    return join(this.dir, 'jobs', `${jobId}.json`);
  }

  async record(jobId: string, spec: SubmitSpec): Promise<void> {
    const file = this.file(jobId);
    await mkdir(join(this.dir, 'jobs'), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify({ ...spec, jobId }));
    await rename(tmp, file);
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.file(jobId), { force: true });
  }

  /** Every recorded job; a file that does not parse is reported, not skipped silently. */
  async list(): Promise<Array<SubmitSpec & { jobId: string }>> {
    const names = await readdir(join(this.dir, 'jobs')).catch(() => [] as string[]);
    const specs: Array<SubmitSpec & { jobId: string }> = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const path = join(this.dir, 'jobs', name);
      try {
        specs.push(JSON.parse(await readFile(path, 'utf8')) as SubmitSpec & { jobId: string });
      } catch (e) {
        throw new EddyError(
          'EDDY_CLUSTER',
          `HA record ${path} is unreadable: ${(e as Error).message} (remove it to start without that job)`,
          {
            domain: 'external',
          },
        );
      }
    }
    return specs;
  }
}
