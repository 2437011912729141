import { describe, expect, it } from 'vitest';
import { QueryChain } from './query-chain.js';

const deferred = () => {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

describe('QueryChain', () => {
  it('runs steps one after another in queue order', async () => {
    const chain = new QueryChain();
    const log: string[] = [];
    const first = deferred();
    chain.enqueue(async () => {
      log.push('a start');
      await first.promise;
      log.push('a end');
    });
    chain.enqueue(async () => {
      log.push('b');
    });
    expect(chain.size).toBe(2);
    await Promise.resolve();
    expect(log).toEqual(['a start']);
    first.resolve();
    await chain.drain();
    expect(log).toEqual(['a start', 'a end', 'b']);
    expect(chain.size).toBe(0);
  });

  it('waitBelow resolves once few enough steps are queued', async () => {
    const chain = new QueryChain();
    const gates = [deferred(), deferred(), deferred()];
    for (const g of gates) chain.enqueue(() => g.promise);
    let released = false;
    const waiting = chain.waitBelow(1).then(() => {
      released = true;
    });
    gates[0]!.resolve();
    await new Promise((r) => setTimeout(r, 0));
    expect(released).toBe(false);
    gates[1]!.resolve();
    await waiting;
    expect(chain.size).toBe(1);
    gates[2]!.resolve();
    await chain.drain();
  });

  it('skips every step after the first failure and reports it', async () => {
    const chain = new QueryChain();
    const ran: string[] = [];
    const boom = new Error('boom');
    const a = chain.enqueue(async () => {
      throw boom;
    });
    const b = chain.enqueue(async () => {
      ran.push('b');
    });
    await expect(a).rejects.toBe(boom);
    await expect(b).rejects.toBe(boom);
    await expect(chain.drain()).rejects.toBe(boom);
    await expect(chain.waitBelow(5)).rejects.toBe(boom);
    expect(ran).toEqual([]);
    expect(chain.failed?.error).toBe(boom);
  });

  it('stop: waits for the step running now, skips the rest, and is bounded', async () => {
    const chain = new QueryChain();
    const running = deferred();
    const ran: string[] = [];
    chain.enqueue(async () => {
      await running.promise;
      ran.push('a');
    });
    chain.enqueue(async () => {
      ran.push('b');
    });
    await new Promise((r) => setTimeout(r, 0)); // the first step is now running
    let stopped = false;
    const stop = chain.stop(60_000).then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(stopped).toBe(false); // the running step has not finished
    running.resolve();
    await stop;
    expect(ran).toEqual(['a']); // it finished first; the queued one never ran
    // A step that never finishes holds stop() only until its bound.
    const stuck = new QueryChain();
    stuck.enqueue(() => new Promise<void>(() => {}));
    await stuck.stop(20);
  });
});
