// A policy reload's ban.rate: the batch size changes at once, and a new window (a rate under one per
// second) replaces p-queue without losing a change or hanging drain().
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FirewallChange } from '../../src/firewall/backend.js';
import { DecisionQueue } from '../../src/enforce/decision-queue.js';
import { formatCidr, parseCidr } from '../../src/net/ip.js';
import { FakeBackend } from '../support/fake-backend.js';

const host = (i: number) => parseCidr(`198.51.100.${i}`)!;
const sizes = (commits: readonly FirewallChange[][]) => commits.map((c) => c.length);

describe('DecisionQueue.setRate', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  function setup(rate: number) {
    const backend = new FakeBackend();
    const queue = new DecisionQueue(backend, { rate, onCommit: () => {}, onError: () => {} });
    return { backend, queue };
  }

  it('a lower rate makes smaller batches from the next window on', async () => {
    const { backend, queue } = setup(100);
    queue.setRate(2);
    for (let i = 1; i <= 5; i++) queue.push('add', host(i));
    const drained = queue.drain();
    await vi.advanceTimersByTimeAsync(5000);
    await drained;
    expect(sizes(backend.commits)).toEqual([2, 2, 1]);
  });

  it('a rate under one per second: one change every 2 s, nothing lost, drain ends', async () => {
    const { backend, queue } = setup(10);
    queue.push('add', host(1));
    await vi.advanceTimersByTimeAsync(10);
    queue.setRate(0.5);
    for (let i = 2; i <= 4; i++) queue.push('add', host(i));
    let done = false;
    const drained = queue.drain().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(1100);
    const afterOneSecond = backend.commits.length;
    await vi.advanceTimersByTimeAsync(10_000);
    await drained;
    expect(done).toBe(true);
    expect(
      backend.commits
        .flat()
        .map((c) => formatCidr(c.target))
        .sort(),
    ).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4']);
    expect(sizes(backend.commits)).toEqual([1, 1, 1, 1]);
    expect(afterOneSecond).toBeLessThanOrEqual(2);
  });
});
