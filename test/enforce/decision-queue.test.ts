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
    expect(backend.commits.map(shown)).toEqual([['add 198.51.100.1', 'add 198.51.100.2', 'add 198.51.100.3', 'add 198.51.100.4', 'add 198.51.100.5']]);
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

  it('a change pushed while the window is used waits for the next window and then goes', async () => {
    const { backend, queue } = setup(20);
    queue.push('add', host(1));
    await vi.advanceTimersByTimeAsync(0);
    queue.push('add', host(2));
    queue.push('add', host(3));
    await vi.advanceTimersByTimeAsync(500);
    expect(backend.commits).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(backend.commits.map(shown)).toEqual([['add 198.51.100.1'], ['add 198.51.100.2', 'add 198.51.100.3']]);
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
