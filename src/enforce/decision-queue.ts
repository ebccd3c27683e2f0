// The decision queue: ban and unban changes wait here and go to the firewall one change set at a
// time, at most `rate` changes per second (p-queue's interval cap), each batch one backend commit.
// A target already waiting is not queued twice; a ban and an unban of one target cancel out.
import PQueue from 'p-queue';
import type { CommitResult, FirewallBackend, FirewallChange } from '../firewall/backend.js';
import { type Cidr, formatCidr } from '../net/ip.js';

export interface DecisionQueueOptions {
  /** Firewall changes per second. @default 20 */
  readonly rate: number;
  /** Called before every commit: the store is persisted before the firewall changes. */
  readonly beforeCommit?: () => void;
  /** Called after every commit with what it did, so that the caller can log, persist and hook. */
  readonly onCommit: (result: CommitResult) => void | Promise<void>;
  /** Called when a commit throws (the backend is gone, for example); the changes are retried later. */
  readonly onError: (error: unknown, changes: readonly FirewallChange[]) => void;
}

/** One batch per window; the window is a second, or longer for rates under one per second. */
function window(rate: number): { windowMs: number; batchSize: number } {
  const windowMs = Math.max(1000, Math.ceil(1000 / rate));
  return { windowMs, batchSize: Math.max(1, Math.floor((rate * windowMs) / 1000)) };
}

export class DecisionQueue {
  private readonly pending = new Map<string, FirewallChange>();
  private queue: PQueue;
  private batchSize: number;
  private windowMs: number;
  /** A queue replaced by setRate, until its last batch is done. */
  private retired: Promise<void> = Promise.resolve();
  private scheduled = false;

  constructor(
    private readonly backend: FirewallBackend,
    private readonly options: DecisionQueueOptions,
  ) {
    ({ windowMs: this.windowMs, batchSize: this.batchSize } = window(options.rate));
    this.queue = new PQueue({ concurrency: 1, interval: this.windowMs, intervalCap: 1 });
  }

  /** A policy reload's ban.rate. p-queue's window is fixed, so a new window needs a new queue. */
  setRate(rate: number): void {
    const next = window(rate);
    this.batchSize = next.batchSize;
    if (next.windowMs === this.windowMs) return;
    this.windowMs = next.windowMs;
    const old = this.queue;
    // A batch scheduled on the old queue still runs there and schedules the next one here.
    this.retired = old.onIdle();
    this.queue = new PQueue({ concurrency: 1, interval: this.windowMs, intervalCap: 1 });
  }

  /**
   * Queues a change; false when the same change is already waiting. `key` is the target's text,
   * when the caller has it already (the enforcer does, for every ban of a 10k list).
   */
  push(op: FirewallChange['op'], target: Cidr, expiresAt?: number, key = formatCidr(target)): boolean {
    const waiting = this.pending.get(key);
    if (waiting?.op === op) return false;
    // The latest decision wins: a ban then an unban before either is applied leaves a delete
    // (a no-op if the rule is absent), never nothing, which could leave a stale rule in place.
    this.pending.set(key, expiresAt === undefined ? { op, target } : { op, target, expiresAt });
    this.schedule();
    return true;
  }

  has(target: string, op?: FirewallChange['op']): boolean {
    const waiting = this.pending.get(target);
    return waiting !== undefined && (op === undefined || waiting.op === op);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Nothing waiting and no batch being committed. */
  get idle(): boolean {
    return this.pending.size === 0 && this.queue.size === 0 && this.queue.pending === 0;
  }

  private stopped = false;

  /**
   * Stops taking batches and resolves once the batch in flight (if any) is committed. What is still
   * waiting stays in the store: reconcile applies it at the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue.clear();
    await this.exclusive(async () => {});
  }

  private schedule(): void {
    if (this.stopped || this.scheduled || this.pending.size === 0) return;
    this.scheduled = true;
    void this.queue.add(() => this.flushBatch());
  }

  private async flushBatch(): Promise<void> {
    // p-queue starts a job synchronously inside add(): let the current task finish pushing, so that
    // changes that arrive together go in one batch instead of the first alone and the rest a window later.
    await Promise.resolve();
    this.scheduled = false;
    if (this.stopped) return;
    await this.exclusive(async () => {
      // Unbans first: an expired ban is lifted on time even while a flood keeps the queue busy.
      const batch: FirewallChange[] = [];
      for (const op of ['delete', 'add'] as const) {
        for (const [key, change] of this.pending) {
          if (batch.length >= this.batchSize) break;
          if (change.op !== op) continue;
          batch.push(change);
          this.pending.delete(key);
        }
      }
      try {
        this.options.beforeCommit?.();
        for (const change of batch) {
          if (change.op === 'add') this.backend.add(change.target, change.expiresAt);
          else this.backend.delete(change.target);
        }
        await this.options.onCommit(await this.backend.commit());
      } catch (error) {
        this.options.onError(error, batch);
      }
    });
    this.schedule();
  }

  private lock: Promise<unknown> = Promise.resolve();

  /**
   * Runs `task` while no batch is being taken or committed: reconcile reads the firewall here, so
   * that a change is always either still waiting in the queue or already in the firewall.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.lock.then(task, task);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Resolves when every queued change has been committed (or has failed). */
  async drain(): Promise<void> {
    while (!this.stopped && (this.pending.size > 0 || this.queue.size > 0 || this.queue.pending > 0)) {
      await this.retired;
      await this.queue.onIdle();
    }
  }
}
