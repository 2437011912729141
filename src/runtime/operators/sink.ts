/** Drives a SinkWriter: buffered writes per record, batched I/O between batches. */
import { EddyError } from '../../core/errors.js';
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
    this.writer = this.sink.createWriter({ ...ctx, splits: NO_SPLITS });
    await this.writer.open();
  }

  processRecord(record: T): void {
    this.position++;
    try {
      this.writer.write(record);
    } catch (e) {
      throw e instanceof EddyError
        ? e
        : userFailure(this.ctx.subtask, 'sink write', this.position, e);
    }
  }

  endOfBatch(): void | Promise<void> {
    return this.writer.flush();
  }

  finish(): Promise<void> {
    return this.writer.finish();
  }

  snapshotState(checkpointId: number): void {
    this.writer.snapshotState?.(checkpointId);
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    await this.writer.notifyCheckpointComplete?.(checkpointId);
  }

  async close(failed: boolean): Promise<void> {
    if (failed) await this.writer.abort();
  }
}
