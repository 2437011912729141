/**
 * Runs a sink subtask's statements one after another, in the order they were queued, while
 * the subtask keeps buffering records: `enqueue` is synchronous (so `snapshotState` can queue
 * the checkpoint's last rows and its PREPARE), `waitBelow` is the backpressure of `flush`, and
 * `drain` awaits everything. The first failure stops the chain: every step queued after it is
 * skipped, because on a connection with a transaction open the later statements would run
 * outside the transaction that failed (or not at all), and their output would not be what a
 * checkpoint promised.
 */
export class QueryChain {
  private tail: Promise<void> = Promise.resolve();
  private depth = 0;
  private failure: { error: unknown } | undefined;
  /** Resolvers waiting for `depth` to drop (`waitBelow`). */
  private waiters: Array<() => void> = [];

  /** The first failure, if any (the chain runs nothing more after it). */
  get failed(): { error: unknown } | undefined {
    return this.failure;
  }

  /** Steps queued and not finished. */
  get size(): number {
    return this.depth;
  }

  /** Queues `step`; returns a promise of its own outcome (a skipped step rejects too). */
  enqueue(step: () => Promise<void>): Promise<void> {
    this.depth++;
    const run = this.tail.then(() => {
      if (this.failure !== undefined) throw this.failure.error;
      return step();
    });
    this.tail = run.then(
      () => this.settled(),
      (e) => {
        this.failure ??= { error: e };
        this.settled();
      },
    );
    // The caller may never await this one (a batch): keep its rejection handled.
    run.catch(() => {});
    return run;
  }

  /** Resolves once at most `n` steps are queued (rejects with the failure, if any). */
  async waitBelow(n: number): Promise<void> {
    while (this.depth > n && this.failure === undefined) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure !== undefined) throw this.failure.error;
  }

  /**
   * Runs nothing more (steps not started are skipped) and resolves once the step running now,
   * if any, has finished, or after `maxWaitMs`. Never rejects.
   */
  async stop(maxWaitMs: number): Promise<void> {
    this.failure ??= { error: new Error('the statement chain was stopped') };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, maxWaitMs);
    });
    try {
      await Promise.race([this.tail, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when every queued step has finished; rejects with the first failure. */
  async drain(): Promise<void> {
    await this.waitBelow(0);
  }

  private settled(): void {
    this.depth--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
