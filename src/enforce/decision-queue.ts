// The decision queue: ban and unban changes wait here and go to the firewall one change set at a
// time, each batch one backend commit, never more than `rate` changes in any one-second window.
// A target already waiting is not queued twice; a ban and an unban of one target cancel out.
//
// The limit is a sliding window kept here, not p-queue's interval cap: p-queue counts jobs in fixed
// windows, so a batch at the end of one window and another at the start of the next put twice (with
// a job added after each batch, three times) the rate into one second (60 changes at 20/s), and one
// batch per window made a lone manual ban wait for the next window (about 0.9 s) whatever the rate.
// p-queue still runs the work one job at a time (concurrency 1): a batch's commit and a reconcile's
// reading of the firewall never overlap.
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

/** A change and whoever waits for it to reach the firewall (a manual command's request). */
interface Waiting {
  change: FirewallChange;
  waiters: ((applied: boolean) => void)[] | undefined;
  /** When the target was first queued (its change may be replaced since): the metrics' oldest age. */
  readonly since: number;
}

export class DecisionQueue {
  private readonly pending = new Map<string, Waiting>();
  /** The batch being committed, so that a request can still wait for its changes in it. */
  private inFlight = new Map<string, Waiting>();
  private windowMs: number;
  private perWindow: number;
  /** One job at a time: a batch's commit, or a reconcile reading and repairing the firewall. */
  private readonly serial = new PQueue({ concurrency: 1 });
  /** Commits that ended within the last window: when each ended and how many changes it made. */
  private readonly spent: { at: number; count: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly backend: FirewallBackend,
    private readonly options: DecisionQueueOptions,
  ) {
    // The window is a second, or longer for rates under one per second (0.5/s: one change per 2 s).
    this.windowMs = Math.max(1000, Math.ceil(1000 / options.rate));
    this.perWindow = Math.max(1, Math.floor((options.rate * this.windowMs) / 1000));
  }

  /**
   * A policy reload's ban.rate, from the next batch on. Commits already in the window keep counting
   * against the new budget, so a change of rate cannot open a burst.
   */
  setRate(rate: number): void {
    this.windowMs = Math.max(1000, Math.ceil(1000 / rate));
    this.perWindow = Math.max(1, Math.floor((rate * this.windowMs) / 1000));
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.schedule();
    }
  }

  /**
   * Queues a change; false when the same change is already waiting. `key` is the target's text,
   * when the caller has it already (the enforcer does, for every ban of a 10k list).
   */
  push(op: FirewallChange['op'], target: Cidr, expiresAt?: number, key = formatCidr(target)): boolean {
    const waiting = this.pending.get(key);
    if (waiting?.change.op === op) return false;
    // The latest decision wins: a ban then an unban before either is applied leaves a delete
    // (a no-op if the rule is absent), never nothing, which could leave a stale rule in place.
    const change: FirewallChange = expiresAt === undefined ? { op, target } : { op, target, expiresAt };
    if (waiting !== undefined) waiting.change = change;
    else this.pending.set(key, { change, waiters: undefined, since: Date.now() });
    this.schedule();
    return true;
  }

  has(target: string, op?: FirewallChange['op']): boolean {
    const waiting = this.pending.get(target);
    return waiting !== undefined && (op === undefined || waiting.change.op === op);
  }

  get size(): number {
    return this.pending.size;
  }

  /**
   * When the oldest change still waiting (or in the batch being committed) was queued; undefined
   * when none waits. Maps keep insertion order, so each map's first entry is its oldest.
   */
  get oldestSince(): number | undefined {
    const pending = this.pending.values().next().value?.since;
    const inFlight = this.inFlight.values().next().value?.since;
    if (pending === undefined) return inFlight;
    return inFlight === undefined ? pending : Math.min(pending, inFlight);
  }

  /** Nothing waiting and no batch being committed. */
  get idle(): boolean {
    return this.pending.size === 0 && this.running === undefined && this.timer === undefined;
  }

  /**
   * Resolves once the changes of these targets that are waiting or being committed now have been
   * committed (or have failed: reconcile retries them), with how many were still waiting when the
   * queue stopped (0 unless it stopped). Unlike drain, it does not wait for anyone else's changes.
   */
  whenApplied(keys: Iterable<string>): Promise<number> {
    return new Promise((resolve) => {
      let open = 1; // this call's own hold, released after the loop: resolves once, at the end
      let unapplied = 0;
      const done = (applied: boolean) => {
        if (!applied) unapplied++;
        if (--open === 0) resolve(unapplied);
      };
      for (const key of keys) {
        const waiting = this.pending.get(key) ?? this.inFlight.get(key);
        if (waiting === undefined) continue;
        if (this.stopped) {
          unapplied++; // nothing will commit it now: saying so beats waiting for ever
          continue;
        }
        open++;
        waiting.waiters ??= [];
        waiting.waiters.push(done);
      }
      done(true);
    });
  }

  /**
   * Stops taking batches and resolves once the batch in flight (if any) is committed. What is still
   * waiting stays in the store: reconcile applies it at the next start. Whoever waits for it is told.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.exclusive(async () => {});
    for (const waiting of this.pending.values()) for (const waiter of waiting.waiters ?? []) waiter(false);
    for (const waiting of this.pending.values()) waiting.waiters = undefined;
    this.notifyIdle();
  }

  /** Changes the last window's commits leave for now. */
  private budget(now: number): number {
    while (this.spent.length > 0 && this.spent[0]!.at <= now - this.windowMs) this.spent.shift();
    let used = 0;
    for (const { count } of this.spent) used += count;
    return this.perWindow - used;
  }

  private schedule(): void {
    if (this.stopped || this.timer !== undefined || this.running !== undefined || this.pending.size === 0) return;
    const now = Date.now();
    // No budget: wait until the oldest commit of the window leaves it. A timer even when there is
    // budget: changes pushed in the same turn (a ban list, concurrent requests) go in one batch.
    const wait = this.budget(now) > 0 ? 0 : this.spent[0]!.at + this.windowMs - now;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.flushBatch().finally(() => {
        this.running = undefined;
        this.schedule();
        this.notifyIdle();
      });
    }, wait);
  }

  private async flushBatch(): Promise<void> {
    await this.exclusive(async () => {
      if (this.stopped) return;
      const budget = this.budget(Date.now());
      if (budget <= 0) return;
      // Unbans first: an expired ban is lifted on time even while a flood keeps the queue busy.
      const batch: FirewallChange[] = [];
      const taken = new Map<string, Waiting>();
      for (const op of ['delete', 'add'] as const) {
        for (const [key, waiting] of this.pending) {
          if (batch.length >= budget) break;
          if (waiting.change.op !== op) continue;
          batch.push(waiting.change);
          taken.set(key, waiting);
          this.pending.delete(key);
        }
      }
      this.inFlight = taken;
      try {
        this.options.beforeCommit?.();
        for (const change of batch) {
          if (change.op === 'add') this.backend.add(change.target, change.expiresAt);
          else this.backend.delete(change.target);
        }
        await this.options.onCommit(await this.backend.commit());
      } catch (error) {
        this.options.onError(error, batch);
      } finally {
        // Counted from the commit's end: its changes may reach the firewall up to then, and the next
        // batch starts a whole window later when this one used it up.
        this.spent.push({ at: Date.now(), count: batch.length });
        this.inFlight = new Map();
        for (const waiting of taken.values()) for (const waiter of waiting.waiters ?? []) waiter(true);
      }
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter();
  }

  /**
   * Runs `task` while no batch is being taken or committed: reconcile reads the firewall here, so
   * that a change is always either still waiting in the queue or already in the firewall.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.serial.add(task, { throwOnTimeout: true });
  }

  /** Resolves when every queued change has been committed (or has failed), or the queue stopped. */
  async drain(): Promise<void> {
    while (!this.stopped && (this.pending.size > 0 || this.running !== undefined || this.timer !== undefined)) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }
}
