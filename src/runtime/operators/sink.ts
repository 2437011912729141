/**
 * Drives a SinkWriter: buffered writes per record, batched I/O between batches. Whatever the
 * writer throws is attributed to this sink's subtask (never to the operator chained before
 * it): the connector's own EddyErrors keep their code (e.g. `EDDY_SINK_IO`) with the sink
 * named; other errors from `write` are the user's sink code failing (`EDDY_USER_FUNCTION`).
 */
import { attributeTo, EddyError } from '../../core/errors.js';
import { NO_SPLITS, type Sink, type SinkWriter } from '../io.js';
import type { OperatorContext, StreamOperator } from '../operator.js';
import { userFailure } from './base.js';

export class SinkOperator<T> implements StreamOperator<T, never> {
  private writer!: SinkWriter<T>;
  private ctx!: OperatorContext;
  private position = 0;

  constructor(private readonly sink: Sink<T>) {}

  async open(ctx: OperatorContext): Promise<void> {
    this.ctx = ctx;
    this.writer = this.sink.createWriter({
      ...ctx,
      splits: NO_SPLITS,
      wakeup: () => {},
      sendSourceEvent: () => {},
    });
    await this.writer.open();
  }

  processRecord(record: T): void {
    this.position++;
    try {
      this.writer.write(record);
    } catch (e) {
      throw e instanceof EddyError
        ? attributeTo(this.ctx.subtask, e)
        : userFailure(this.ctx.subtask, 'sink write', this.position, e, { record });
    }
  }

  endOfBatch(): void | Promise<void> {
    let flushed: void | Promise<void>;
    try {
      flushed = this.writer.flush();
    } catch (e) {
      throw this.attribute(e);
    }
    return flushed === undefined ? undefined : flushed.catch(this.rethrow);
  }

  async finish(): Promise<void> {
    try {
      await this.writer.finish();
    } catch (e) {
      throw this.attribute(e);
    }
  }

  /**
   * A stop without drain: with checkpointing the final checkpoint commits the output written so
   * far (and `finish` would seal it as if the input had ended); without, no checkpoint follows,
   * so the output is made visible now or it would be lost.
   */
  async endOfStoppedInput(): Promise<void> {
    if (!this.ctx.checkpointing) await this.finish();
  }

  snapshotState(checkpointId: number): void {
    try {
      this.writer.snapshotState?.(checkpointId);
    } catch (e) {
      throw this.attribute(e);
    }
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    try {
      await this.writer.notifyCheckpointComplete?.(checkpointId);
    } catch (e) {
      throw this.attribute(e);
    }
  }

  snapshotStateAsync(checkpointId: number): Promise<void> | undefined {
    return this.writer.snapshotStateAsync?.(checkpointId)?.catch(this.rethrow);
  }

  async notifyCheckpointAborted(checkpointId: number): Promise<void> {
    try {
      await this.writer.notifyCheckpointAborted?.(checkpointId);
    } catch (e) {
      throw this.attribute(e);
    }
  }

  async close(failed: boolean): Promise<void> {
    if (failed) await this.writer.abort();
    else await this.writer.close?.();
  }

  private attribute(e: unknown): EddyError {
    return attributeTo(this.ctx.subtask, e);
  }

  /** Rejection handler of a flush (one function per operator, not per batch). */
  private readonly rethrow = (e: unknown): never => {
    throw this.attribute(e);
  };
}
