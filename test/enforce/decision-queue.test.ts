// The decision queue in front of the firewall: one commit per batch, at most `rate` changes per
// window, no target queued twice, a ban and an unban cancelling, unbans first, errors survived.
// Rate limits are checked by counting commits under fake timers, never by measuring speed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CommitResult, FirewallChange } from '../../src/firewall/backend.js';
import { DecisionQueue, type DecisionQueueOptions } from '../../src/enforce/decision-queue.js';
import { type Cidr, formatCidr, parseCidr } from '../../src/net/ip.js';
import { FakeBackend } from '../support/fake-backend.js';

const cidr = (text: string): Cidr => parseCidr(text)!;
const host = (i: number): Cidr => cidr(`198.51.100.${i}`);
const shown = (changes: readonly FirewallChange[]) => changes.map((c) => `${c.op} ${formatCidr(c.target)}`);

function setup(rate: number, overrides: Partial<DecisionQueueOptions> = {}) {
  const backend = new FakeBackend();
  const results: CommitResult[] = [];
  const errors: { error: unknown; changes: readonly FirewallChange[] }[] = [];
  const queue = new DecisionQueue(backend, {
    rate,
    onCommit: (result) => {
      results.push(result);
    },
    onError: (error, changes) => errors.push({ error, changes }),
    ...overrides,
  });
  return { backend, queue, results, errors };
}

describe('DecisionQueue batching', () => {
  it('sends changes that arrive together as one commit', async () => {
    const { backend, queue } = setup(20);
    for (let i = 1; i <= 5; i++) queue.push('add', host(i));
    await queue.drain();
    expect(backend.commits.map(shown)).toEqual([
      ['add 198.51.100.1', 'add 198.51.100.2', 'add 198.51.100.3', 'add 198.51.100.4', 'add 198.51.100.5'],
    ]);
  });

  it('hands each commit’s result to onCommit', async () => {
    const { backend, queue, results } = setup(20);
    backend.failing.add('198.51.100.2');
    queue.push('add', host(1));
    queue.push('add', host(2));
    await queue.drain();
    expect(results).toHaveLength(1);
    expect(shown(results[0]!.applied)).toEqual(['add 198.51.100.1']);
    expect(shown(results[0]!.failed.map((f) => f.change))).toEqual(['add 198.51.100.2']);
  });

  it('calls beforeCommit before the backend changes anything', async () => {
    const order: string[] = [];
    const { backend, queue } = setup(20, { beforeCommit: () => order.push(`before (rules: ${backend.rules.length})`) });
    const commit = backend.commit.bind(backend);
    backend.commit = async () => {
      order.push('commit');
      return commit();
    };
    queue.push('add', host(1));
    await queue.drain();
    expect(order).toEqual(['before (rules: 0)', 'commit']);
  });

  it('drain resolves only when every change is in the firewall', async () => {
    const { backend, queue } = setup(20);
    queue.push('add', host(1));
    queue.push('add', cidr('2001:db8::7'));
    await queue.drain();
    expect(backend.rules).toEqual(['198.51.100.1', '2001:db8::7']);
    expect(queue.size).toBe(0);
  });
});

describe('DecisionQueue dedupe and cancelling', () => {
  it('does not queue a target that is already waiting for the same change', async () => {
    const { backend, queue } = setup(20);
    expect(queue.push('add', host(1))).toBe(true);
    expect(queue.push('add', cidr('::ffff:198.51.100.1'))).toBe(false);
    expect(queue.size).toBe(1);
    await queue.drain();
    expect(backend.history).toEqual(['add 198.51.100.1']);
  });

  it('replaces a waiting ban with a later unban of the same target: no rule is added', async () => {
    const { backend, queue } = setup(20);
    queue.push('add', host(1));
    queue.push('add', host(2));
    expect(queue.push('delete', host(1))).toBe(true);
    expect(queue.has('198.51.100.1', 'delete')).toBe(true);
    await queue.drain();
    expect(backend.rules).toEqual(['198.51.100.2']);
  });

  it('replaces a waiting unban with a later ban of the same target (the rule stays)', async () => {
    const { backend, queue } = setup(20);
    backend.rules = ['198.51.100.1'];
    queue.push('delete', host(1));
    queue.push('add', host(1));
    await queue.drain();
    expect(backend.rules).toEqual(['198.51.100.1']);
  });

  it('lifts an address whose re-add (after its network was unbanned) was still waiting', async () => {
    const { backend, queue } = setup(20);
    // The address has its own rule; the network's unban queued an add for it; then it is unbanned too.
    backend.rules = ['198.51.100.7'];
    queue.push('add', host(7));
    queue.push('delete', host(7));
    await queue.drain();
    expect(backend.rules).toEqual([]);
  });

  it('tells which targets wait and for what', () => {
    const { queue } = setup(20);
    queue.push('add', host(1));
    queue.push('delete', host(2));
    queue.push('add', cidr('2001:db8::/64'));
    expect(queue.has('198.51.100.1', 'add')).toBe(true);
    expect(queue.has('198.51.100.1', 'delete')).toBe(false);
    expect(queue.has('198.51.100.2')).toBe(true);
    expect(queue.has('2001:db8::/64', 'add')).toBe(true);
    expect(queue.size).toBe(3);
  });
});

describe('DecisionQueue rate limit (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('commits at most `rate` changes per one-second window', async () => {
    const { backend, queue } = setup(3);
    for (let i = 1; i <= 7; i++) queue.push('add', host(i));
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.commits.map((c) => c.length)).toEqual([3]);
    await vi.advanceTimersByTimeAsync(999);
    expect(backend.commits.map((c) => c.length)).toEqual([3]);
    await vi.advanceTimersByTimeAsync(1);
    expect(backend.commits.map((c) => c.length)).toEqual([3, 3]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(backend.commits.map((c) => c.length)).toEqual([3, 3, 1]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(backend.commits).toHaveLength(3);
    expect(backend.rules).toHaveLength(7);
  });

  it('stretches the window for rates under one per second', async () => {
    const { backend, queue } = setup(0.5);
    queue.push('add', host(1));
    queue.push('add', host(2));
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.commits.map(shown)).toEqual([['add 198.51.100.1']]);
    await vi.advanceTimersByTimeAsync(1999);
    expect(backend.commits).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(backend.commits.map(shown)).toEqual([['add 198.51.100.1'], ['add 198.51.100.2']]);
  });

  it('puts unbans first, so a flood of bans does not delay expiries', async () => {
    const { backend, queue } = setup(2);
    backend.rules = ['192.0.2.1', '192.0.2.2'];
    queue.push('add', host(1));
    queue.push('add', host(2));
    queue.push('add', host(3));
    queue.push('delete', cidr('192.0.2.1'));
    queue.push('delete', cidr('192.0.2.2'));
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(2000);
    expect(backend.commits.map(shown)).toEqual([
      ['delete 192.0.2.1', 'delete 192.0.2.2'],
      ['add 198.51.100.1', 'add 198.51.100.2'],
      ['add 198.51.100.3'],
    ]);
  });

  it('puts unbans before bans inside one batch', async () => {
    const { backend, queue } = setup(20);
    queue.push('add', host(1));
    queue.push('delete', cidr('192.0.2.1'));
    queue.push('add', host(2));
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.commits.map(shown)).toEqual([['delete 192.0.2.1', 'add 198.51.100.1', 'add 198.51.100.2']]);
  });

  it('commits a change pushed after a commit at once while the last second leaves budget (a lone ban does not wait for a window)', async () => {
    const { backend, queue } = setup(20);
    queue.push('add', host(1));
    await vi.advanceTimersByTimeAsync(0);
    queue.push('add', host(2));
    queue.push('add', host(3));
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.commits.map(shown)).toEqual([['add 198.51.100.1'], ['add 198.51.100.2', 'add 198.51.100.3']]);
  });

  it('holds a change pushed when the budget is used until the oldest commit leaves the window', async () => {
    const { backend, queue } = setup(3);
    for (let i = 1; i <= 3; i++) queue.push('add', host(i));
    await vi.advanceTimersByTimeAsync(400);
    queue.push('add', host(4));
    await vi.advanceTimersByTimeAsync(599);
    expect(backend.commits.map((c) => c.length)).toEqual([3]);
    await vi.advanceTimersByTimeAsync(1);
    expect(backend.commits.map((c) => c.length)).toEqual([3, 1]);
  });

  it('never puts more than `rate` changes in any one-second window, commits that take time and pushes at any moment included', async () => {
    const { backend, queue } = setup(20);
    // Each commit takes 15 ms, as an ipset restore does; a change counts as made anywhere from the
    // commit's start to its end.
    const commit = backend.commit.bind(backend);
    const spans: { start: number; end: number; count: number }[] = [];
    backend.commit = async () => {
      const start = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 15));
      const result = await commit();
      spans.push({ start, end: Date.now(), count: result.applied.length });
      return result;
    };
    let next = 0;
    for (let i = 0; i < 200; i++) queue.push('add', cidr(`198.18.0.${next++}`));
    // More arrive now and then, as manual bans and detections do.
    for (let t = 0; t < 6000; t += 37) {
      if (t % 3 === 0) queue.push('add', cidr(`198.18.1.${next++ % 256}`));
      await vi.advanceTimersByTimeAsync(37);
    }
    await vi.advanceTimersByTimeAsync(20_000);
    expect(queue.size).toBe(0);
    let worst = 0;
    for (const { start } of spans) {
      // The window [start, start + 1000) is the worst one starting at a commit.
      let inWindow = 0;
      for (const other of spans) if (other.start < start + 1000 && other.end >= start) inWindow += other.count;
      worst = Math.max(worst, inWindow);
    }
    expect(worst).toBeLessThanOrEqual(20);
    expect(spans.reduce((sum, s) => sum + s.count, 0)).toBe(next);
  });
});

describe('DecisionQueue.whenApplied', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves once its own changes are committed, not after everything queued (an unban overtakes a ban list)', async () => {
    const { backend, queue } = setup(2);
    for (let i = 1; i <= 6; i++) queue.push('add', host(i));
    queue.push('delete', cidr('192.0.2.1'));
    let resolvedAt: number | undefined;
    void queue.whenApplied(['192.0.2.1']).then(() => (resolvedAt = Date.now()));
    const start = Date.now();
    await vi.advanceTimersByTimeAsync(0);
    expect(resolvedAt).toBe(start);
    expect(backend.commits.map(shown)[0]).toEqual(['delete 192.0.2.1', 'add 198.51.100.1']);
    expect(queue.size).toBe(5);
  });

  it('tells how many of its changes were still waiting when the queue stopped', async () => {
    const { queue } = setup(2);
    for (let i = 1; i <= 5; i++) queue.push('add', host(i));
    const waited = queue.whenApplied([1, 2, 3, 4, 5].map((i) => `198.51.100.${i}`));
    await vi.advanceTimersByTimeAsync(0);
    await queue.stop();
    expect(await waited).toBe(3);
  });

  it('resolves at once, counting them, for changes pushed after the queue stopped', async () => {
    const { queue } = setup(2);
    await queue.stop();
    queue.push('add', host(1));
    expect(await queue.whenApplied(['198.51.100.1'])).toBe(1);
  });

  it('resolves at once for targets with nothing waiting', async () => {
    const { queue } = setup(2);
    expect(await queue.whenApplied(['198.51.100.1'])).toBe(0);
  });
});

describe('DecisionQueue errors', () => {
  it('reports a commit that throws with its changes, and keeps committing later changes', async () => {
    const { backend, queue, errors, results } = setup(1000);
    backend.throwOnNextCommit = new Error('iptables-restore vanished');
    queue.push('add', host(1));
    queue.push('delete', host(9));
    await queue.drain();
    expect(errors).toHaveLength(1);
    expect((errors[0]!.error as Error).message).toBe('iptables-restore vanished');
    expect(shown(errors[0]!.changes)).toEqual(['delete 198.51.100.9', 'add 198.51.100.1']);
    queue.push('add', host(2));
    await queue.drain();
    expect(results.map((r) => shown(r.applied))).toEqual([['add 198.51.100.2']]);
    expect(backend.rules).toEqual(['198.51.100.2']);
  });

  it('reports an onCommit that throws through onError without stalling the queue', async () => {
    let calls = 0;
    const { queue, errors, backend } = setup(1000, {
      onCommit: () => {
        calls++;
        if (calls === 1) throw new Error('state directory full');
      },
    });
    queue.push('add', host(1));
    await queue.drain();
    queue.push('add', host(2));
    await queue.drain();
    expect(errors.map((e) => (e.error as Error).message)).toEqual(['state directory full']);
    expect(backend.rules).toEqual(['198.51.100.1', '198.51.100.2']);
  });
});

describe('DecisionQueue.stop', () => {
  it('finishes the batch in flight, takes no further batch, and leaves the rest waiting', async () => {
    const { backend, queue } = setup(2);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const commit = backend.commit.bind(backend);
    let started!: () => void;
    const inFlight = new Promise<void>((resolve) => (started = resolve));
    backend.commit = async () => {
      started();
      await gate;
      return commit();
    };
    for (let i = 1; i <= 6; i++) queue.push('add', host(i));
    await inFlight; // the first batch of 2 is being committed
    let stopped = false;
    const stopping = queue.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false); // waits for the batch in flight
    release();
    await stopping;
    expect(backend.commits.map(shown)).toEqual([['add 198.51.100.1', 'add 198.51.100.2']]);
    expect(queue.size).toBe(4);
    await queue.drain(); // returns at once: a stopped queue commits nothing more
    expect(backend.commits).toHaveLength(1);
  });
});
