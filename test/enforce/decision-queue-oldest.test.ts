// The decision queue's oldest waiting change, which the metrics show as
// floodgate_queue_oldest_age_seconds: it is the first target queued and not yet committed, and a
// replaced change keeps its target's place.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DecisionQueue } from '../../src/enforce/decision-queue.js';
import { parseCidr } from '../../src/net/ip.js';
import { FakeBackend } from '../support/fake-backend.js';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const host = (i: number) => parseCidr(`198.51.100.${i}`)!;

describe('DecisionQueue.oldestSince', () => {
  beforeEach(() => void vi.useFakeTimers({ now: T0 }));
  afterEach(() => void vi.useRealTimers());

  it('is when the oldest change still waiting was queued, and undefined when none waits', async () => {
    const queue = new DecisionQueue(new FakeBackend(), { rate: 1, onCommit: () => {}, onError: () => {} });
    expect(queue.oldestSince).toBeUndefined();
    queue.push('add', host(1));
    await vi.advanceTimersByTimeAsync(0); // committed at once: the window has budget
    expect(queue.oldestSince).toBeUndefined();
    queue.push('add', host(2));
    vi.setSystemTime(T0 + 300);
    queue.push('add', host(3));
    // An unban replacing host 2's ban keeps host 2's place: it has waited since T0.
    queue.push('delete', host(2));
    expect(queue.oldestSince).toBe(T0);
    await vi.advanceTimersByTimeAsync(1000); // one change per second: host 2's goes
    expect(queue.size).toBe(1);
    expect(queue.oldestSince).toBe(T0 + 300);
    await vi.advanceTimersByTimeAsync(1000);
    expect(queue.oldestSince).toBeUndefined();
  });
});
