import { describe, expect, it } from 'vitest';
import { RateLimiter, splitShareRate, subtaskLimiter } from './rate-limiter.js';
import { FakeClock } from './testing.js';

const never = new AbortController().signal;

describe('RateLimiter', () => {
  it('starts with a burst of 20 ms worth of permits (at least one)', () => {
    expect(new RateLimiter(1000, new FakeClock()).available(1e9)).toBe(20);
    expect(new RateLimiter(2, new FakeClock()).available(1e9)).toBe(1);
  });

  it('refills at the rate, capped at the burst', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(1000, clock);
    limiter.consume(limiter.available(1000));
    expect(limiter.available(1000)).toBe(0);
    clock.advance(5);
    expect(limiter.available(1000)).toBe(5);
    expect(limiter.available(3)).toBe(3);
    clock.advance(10_000);
    expect(limiter.available(1000)).toBe(20);
  });

  it('acquire sleeps just long enough for one permit', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(4, clock);
    limiter.consume(limiter.available(10));
    expect(await limiter.acquire(10, never)).toBe(1);
    expect(clock.sleeps).toEqual([250]);
  });

  it('emitting N permits takes (N - burst) / rate of virtual time', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(50, clock);
    let total = 0;
    while (total < 500) {
      let n = limiter.available(7);
      if (n === 0) n = await limiter.acquire(7, never);
      limiter.consume(n);
      total += n;
    }
    expect(total).toBe(500);
    expect(clock.now()).toBeGreaterThanOrEqual(((500 - 5) / 50) * 1000);
    expect(clock.now()).toBeLessThanOrEqual((500 / 50) * 1000);
  });

  it('acquire resolves 0 once the signal is aborted', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(1, clock);
    limiter.consume(1);
    const controller = new AbortController();
    controller.abort();
    expect(await limiter.acquire(5, controller.signal)).toBe(0);
  });

  it('splits a total rate evenly across subtasks', () => {
    expect(subtaskLimiter(undefined, 3, undefined)).toBeUndefined();
    expect(subtaskLimiter(300, 3, new FakeClock())?.ratePerSecond).toBe(100);
  });

  it('divides a total rate over splits: own unfinished splits of all', () => {
    expect(splitShareRate(15000, 1, 3)).toBe(5000);
    expect(splitShareRate(15000, 2, 3)).toBe(10000);
    expect(splitShareRate(300, 0, 3)).toBe(100); // a reader's last split counts until it ends
  });

  it('setRate changes the refill rate from now on and caps the burst', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(1000, clock);
    limiter.consume(limiter.available(1000));
    clock.advance(10);
    limiter.setRate(100); // the 10 permits accrued at 1000/s stay, capped at the new burst (2)
    expect(limiter.ratePerSecond).toBe(100);
    expect(limiter.capacity).toBe(2);
    expect(limiter.available(100)).toBe(2);
    limiter.consume(2);
    clock.advance(10);
    expect(limiter.available(100)).toBe(1);
    expect(() => limiter.setRate(0)).toThrow(/ratePerSecond/);
  });

  it('rejects non-positive rates', () => {
    expect(() => new RateLimiter(0)).toThrow(/ratePerSecond/);
    expect(() => new RateLimiter(Number.NaN)).toThrow(/ratePerSecond/);
  });
});
