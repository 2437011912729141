/**
 * Dead-letter output for bad input records: one JSON line per record, appended synchronously
 * so nothing is lost when the job fails right after. Bad records are rare, so a write per
 * record is fine here (unlike the sink's hot path).
 *
 * Hazard: after a restore, lines read again since the checkpoint are dead-lettered again
 * (at-least-once); dedupe on (file, line) if that matters.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import type { ConnectorContext, Counter } from '../runtime/io.js';

/** One line of a dead-letter file. */
export interface DeadLetter {
  file: string;
  line: number;
  error: string;
  raw: string;
}

/**
 * Appends dead letters to `<dir>/dead-letters-<subtaskIndex>.jsonl`, creating the directory
 * and file on the first bad record.
 *
 * @example
 * const dl = new DeadLetterWriter('dlq', 0, ctx.metrics.counter('deadLetters'));
 * dl.write({ file: 'in/a.jsonl', line: 3, error: 'invalid JSON', raw: '{oops' });
 * dl.close();
 */
export class DeadLetterWriter {
  readonly path: string;
  private fd = -1;

  constructor(
    private readonly dir: string,
    subtaskIndex: number,
    private readonly counter: Counter,
  ) {
    this.path = join(dir, `dead-letters-${subtaskIndex}.jsonl`);
  }

  write(letter: DeadLetter): void {
    try {
      if (this.fd === -1) {
        mkdirSync(this.dir, { recursive: true });
        this.fd = openSync(this.path, 'a');
      }
      writeSync(this.fd, `${JSON.stringify(letter)}\n`);
    } catch (e) {
      throw new EddyError(
        'EDDY_SOURCE_IO',
        `file source: cannot write dead letter to '${this.path}': ${(e as Error).message}`,
        { domain: 'external', cause: e },
      );
    }
    this.counter.inc();
  }

  close(): void {
    if (this.fd !== -1) {
      const fd = this.fd;
      this.fd = -1;
      closeSync(fd);
    }
  }
}

/**
 * The dead-letter writer a source's `badRecords` option asks for: none for `'fail'` (the
 * default: a bad record fails the job), else one for this subtask under `deadLetterDir`.
 */
export const deadLettersFor = (
  badRecords: 'fail' | { deadLetterDir: string } | undefined,
  ctx: ConnectorContext,
): DeadLetterWriter | undefined =>
  badRecords === undefined || badRecords === 'fail'
    ? undefined
    : new DeadLetterWriter(
        badRecords.deadLetterDir,
        ctx.subtask.subtaskIndex,
        ctx.metrics.counter('deadLetters'),
      );

/** Checks a source's `badRecords` option; `what` names the source in the message. */
export const validateBadRecords = (badRecords: unknown, what: string): void => {
  const bad = badRecords as { deadLetterDir?: unknown } | string | undefined;
  const valid =
    bad === undefined ||
    bad === 'fail' ||
    (typeof bad === 'object' &&
      bad !== null &&
      typeof bad.deadLetterDir === 'string' &&
      bad.deadLetterDir !== '');
  if (!valid) {
    throw new InvalidArgumentError(
      `${what}: badRecords must be 'fail' or { deadLetterDir: '<non-empty path>' }`,
    );
  }
};
