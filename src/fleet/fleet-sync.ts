// Keeps this host's bans and the fleet's in step, whatever the engine: pushes local bans and manual
// unbans through the outbox kept in the ban store, pulls the fleet's changes every `poll`, resyncs
// in full every `resync`, and puts every pulled value through the same gate as a local ban.
import type { Ban, OutboxEntry } from '../bans/ban-store.js';
import { BULK_LINES, type Enforcer } from '../enforce/enforcer.js';
import type { Logger } from '../log.js';
import type { CidrSet } from '../net/cidr-set.js';
import { type Cidr, bitsOf, cidrContains, formatCidr, parseCidr } from '../net/ip.js';
import { formatInstant } from '../policy/duration.js';
import type { FleetDecision, FleetEngine, PushBan } from './fleet-engine.js';

export interface FleetSyncOptions {
  readonly engine: FleetEngine;
  readonly enforcer: Enforcer;
  readonly log: Logger;
  readonly host: string;
  readonly dryRun: boolean;
  readonly poll: number;
  readonly resync: number;
  /** Allowlist, loopback and the host's own addresses, as the daemon has them now. */
  readonly protectedSet: () => CidrSet;
  readonly maxActive: () => number;
  readonly clock?: () => number;
}

export interface FleetStatus {
  readonly engine: string;
  readonly host: string;
  readonly connected: boolean;
  readonly lastPull: string | null;
  readonly lastResync: string | null;
  readonly outbox: number;
  readonly fleetBans: number;
  readonly lastError: { readonly at: string; readonly message: string } | null;
}

/** How often the outbox is looked at: a local ban reaches the engine within this. */
const PUSH_EVERY_MS = 100;
/** Entries per push: 10 000 decisions in one alert took the LAPI 0.7 s. */
const PUSH_BATCH = 10_000;
const BACKOFF_MAX_MS = 30_000;
/** The least time from a failed pull's start to the next pull's. */
const PULL_RETRY_MS = 500;
const ERROR_LOG_EVERY_MS = 60_000;
/** How long after new decisions arrive the follow-up resync comes at the latest, while more keep coming. */
const FOLLOW_UP_MS = 1000;

export class FleetSync {
  private readonly clock: () => number;
  /** Active decisions pulled, by canonical target: several may exist for one, the longest counts. */
  private readonly known = new Map<string, Map<string, FleetDecision>>();
  /** Decisions refused by the gate, logged once each. */
  private readonly refusedIds = new Set<string>();
  private connected = false;
  private lastPull: number | undefined;
  private lastResync: number | undefined;
  private lastError: { at: number; message: string } | undefined;
  private lastErrorLog = -Infinity;
  private pushBackoff = 0;
  private nextPushAt = 0;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private pulling: Promise<void> | undefined;
  /** Whether the last pull failed (pushes may go through meanwhile: `connected` does not say). */
  private pullFailed = false;
  private pushing: Promise<void> | undefined;
  /** When the resync that follows a burst of new decisions is due. */
  private followUpAt: number | undefined;
  /** Set while a pulled change is applied: the enforcer's log lines it causes are not ours to push. */
  private applying = false;
  /**
   * Set while a batch of more than BULK_LINES changes is applied: each change's line goes at debug
   * and the batch logs one summary line (10k lines at info cost more than the bans themselves).
   */
  private quiet = false;
  /** What the batch being applied did, for its summary line. */
  private tally = { applied: 0, extended: 0, lifted: 0 };

  constructor(private readonly options: FleetSyncOptions) {
    this.clock = options.clock ?? Date.now;
  }

  start(): void {
    // Every `poll` from one pull's start to the next, not after it ends: a slow pull must not
    // stretch the delay a ban takes to arrive.
    const pullLoop = async () => {
      if (this.stopped) return;
      const started = this.clock();
      await this.pullOnce();
      // After a failure, at least PULL_RETRY_MS: an error reply comes back at once, and with poll 0
      // (Redis) the next pull would follow at once too, a busy loop against the server.
      const every = this.pullFailed ? Math.max(this.options.poll, PULL_RETRY_MS) : this.options.poll;
      if (!this.stopped) this.timers[0] = setTimeout(pullLoop, Math.max(0, every - (this.clock() - started)));
    };
    const pushLoop = async () => {
      if (this.stopped) return;
      await this.pushOnce();
      if (!this.stopped) this.timers[1] = setTimeout(pushLoop, PUSH_EVERY_MS);
    };
    void pullLoop();
    if (!this.options.dryRun) void pushLoop();
  }

  /** Stops pulling and pushing; what is in the outbox stays there, saved with the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    // A push under way is let finish (its batch then leaves the outbox); a blocked pull is cut short.
    await Promise.allSettled([this.pushing]);
    await this.options.engine.close?.();
    await Promise.allSettled([this.pulling]);
  }

  status(): FleetStatus {
    let fleetBans = 0;
    for (const ban of this.options.enforcer.store.values()) if (ban.fleet !== undefined) fleetBans++;
    const iso = (at: number | undefined) => (at === undefined ? null : new Date(at).toISOString());
    return {
      engine: this.options.engine.name,
      host: this.options.host,
      connected: this.connected,
      lastPull: iso(this.lastPull),
      lastResync: iso(this.lastResync),
      outbox: this.options.enforcer.store.outbox.length,
      fleetBans,
      lastError: this.lastError
        ? { at: new Date(this.lastError.at).toISOString(), message: this.lastError.message }
        : null,
    };
  }

  // --- push ------------------------------------------------------------------------------------

  /** A ban this host decided (detector or manual): queued for the fleet, never in dry-run. */
  localBan(target: string): void {
    if (this.options.dryRun || this.applying) return;
    const ban = this.options.enforcer.store.get(target);
    if (ban === undefined || (ban.fleet !== undefined && ban.localExpiresAt === undefined)) return;
    this.options.enforcer.store.enqueue({
      op: 'ban',
      target,
      rule: ban.rule,
      expiresAt: ban.localExpiresAt ?? ban.expiresAt,
    });
    this.pushSoon();
  }

  private pushQueued = false;

  /**
   * Pushes once the current synchronous work is over: a ban list of 10k logs every ban in one go,
   * and goes out as one batch; a single ban goes out at once rather than at the next tick.
   */
  private pushSoon(): void {
    if (this.pushQueued || this.stopped || this.options.dryRun) return;
    this.pushQueued = true;
    setImmediate(() => {
      this.pushQueued = false;
      void this.pushOnce();
    });
  }

  /** An operator's unban: lifted fleet-wide. */
  localUnban(target: string): void {
    if (this.options.dryRun || this.applying) return;
    this.options.enforcer.store.enqueue({ op: 'unban', target });
    this.pushSoon();
  }

  /** Sends the head of the outbox once; kept there on failure, with a growing wait. */
  pushOnce(): Promise<void> {
    if (this.pushing !== undefined) return this.pushing;
    const store = this.options.enforcer.store;
    const now = this.clock();
    if (store.outbox.length === 0 || now < this.nextPushAt) return Promise.resolve();
    // A ban after an unban of the same target waits for the next push: the engine sends a batch's
    // bans before its unbans.
    const bans: PushBan[] = [];
    const unbans: string[] = [];
    const unbanned = new Set<string>();
    let taken = 0;
    for (const entry of store.outbox as OutboxEntry[]) {
      if (taken >= PUSH_BATCH) break;
      if (entry.op === 'ban') {
        if (unbanned.has(entry.target)) break;
        bans.push(entry);
      } else {
        unbans.push(entry.target);
        unbanned.add(entry.target);
      }
      taken++;
    }
    this.pushing = (async () => {
      try {
        await this.options.engine.push(bans, unbans, now);
        store.dequeue(taken);
        this.connected = true;
        this.pushBackoff = 0;
        const tookMs = this.clock() - now;
        // A bulk push is worth a line at info: it is what the other hosts wait for.
        this.options.log[taken >= 100 ? 'info' : 'debug'](
          { event: 'fleet-push', bans: bans.length, unbans: unbans.length, tookMs, engine: this.options.engine.name },
          `fleet: pushed ${bans.length} ban(s) and ${unbans.length} unban(s) in ${tookMs} ms`,
        );
      } catch (error) {
        this.pushBackoff = Math.min(BACKOFF_MAX_MS, Math.max(500, this.pushBackoff * 2));
        this.nextPushAt = this.clock() + this.pushBackoff;
        this.failed('push', error, { outbox: store.outbox.length });
      } finally {
        this.pushing = undefined;
      }
    })();
    return this.pushing;
  }

  // --- pull ------------------------------------------------------------------------------------

  /** One stream pull, and the full resync when it is due (right after the pull: see §1.5.7 of the research). */
  pullOnce(): Promise<void> {
    if (this.pulling !== undefined) return this.pulling;
    this.pulling = (async () => {
      try {
        // Not while our push is being stored: each LAPI pull is a write too (the bouncer's last
        // pull), and SQLite fails a 10k push that a concurrent write collides with, after storing
        // part of it (then it is checked and resent: 0.5-2 s more). A pull waits a push at most
        // the push's timeout; a Redis read writes nothing.
        if (this.pushing !== undefined && this.options.engine.exactStream !== true)
          await this.pushing.catch(() => undefined);
        const now = this.clock();
        const changes = await this.options.engine.pull(now, this.options.enforcer.store.fleetCursor);
        if (this.stopped) return;
        // The engine is back: a push waiting out its back-off goes now, and the outbox drains once.
        if (!this.connected && this.pushBackoff > 0) {
          this.nextPushAt = 0;
          this.pushSoon();
        }
        this.connected = true;
        this.pullFailed = false;
        this.lastPull = now;
        if (changes.complete) {
          this.applyAll(changes.added, now, 'start-up pull');
          this.lastResync = now;
        } else {
          const count = changes.added.length + changes.deleted.length;
          this.startBatch(count);
          try {
            for (const decision of changes.added) this.added(decision, now);
            for (const decision of changes.deleted) this.deleted(decision, now);
          } finally {
            this.quiet = false;
          }
          if (count > BULK_LINES) {
            const { applied, extended, lifted } = this.tally;
            this.options.log.info(
              {
                event: 'fleet-sync',
                during: 'pull',
                decisions: changes.added.length,
                deleted: changes.deleted.length,
                applied,
                extended,
                lifted,
                engine: this.options.engine.name,
              },
              `fleet pull: ${changes.added.length} new and ${changes.deleted.length} deleted decision(s); ` +
                `${applied} banned, ${extended} extended, ${lifted} lifted (a line per ban at debug level)`,
            );
          }
          // The LAPI's stream can skip a decision for good (one committed after a concurrent poll
          // began: 100 of a 10k push here), and only a full list shows it: one follows each burst,
          // at the first pull that brings nothing new (the burst is over, and what this pull's
          // predecessor skipped is committed by now), or a while after it began if it goes on.
          if (changes.added.length > 0 && this.options.engine.exactStream !== true)
            this.followUpAt ??= now + Math.max(FOLLOW_UP_MS, 2 * this.options.poll);
          else if (this.followUpAt !== undefined) this.followUpAt = now;
        }
        if (changes.cursor !== undefined) this.options.enforcer.store.fleetCursor = changes.cursor;
        const due = this.lastResync !== undefined && now - this.lastResync >= this.options.resync;
        if (due || (this.followUpAt !== undefined && now >= this.followUpAt)) {
          this.followUpAt = undefined;
          await this.resync();
        }
      } catch (error) {
        this.connected = false;
        this.pullFailed = true;
        this.failed('pull', error, {});
      } finally {
        this.pulling = undefined;
      }
    })();
    return this.pulling;
  }

  /** Reads every active fleet decision and reconciles both ways. */
  async resync(): Promise<void> {
    const now = this.clock();
    const all = await this.options.engine.snapshot(now);
    this.lastResync = now;
    this.applyAll(all, now, 'resync');
  }

  private failed(during: string, error: unknown, fields: Record<string, unknown>): void {
    const now = this.clock();
    const message = (error as Error).message;
    const first = this.lastError === undefined;
    this.lastError = { at: now, message };
    if (first || now - this.lastErrorLog >= ERROR_LOG_EVERY_MS) {
      this.lastErrorLog = now;
      this.options.log.warn(
        { event: 'error', during: `fleet-${during}`, engine: this.options.engine.name, message, ...fields },
        `fleet ${during} failed (${message}); retrying, local enforcement goes on`,
      );
    }
  }

  /** The gate every pulled value passes, as a local ban would: canonical form, protected addresses. */
  private gate(decision: FleetDecision): { key: string; cidr: Cidr } | null {
    // Our own decision back (a renamed host): the store already has it.
    if (decision.origin === 'floodgate' && decision.host === this.options.host) return null;
    const cidr = parseCidr(decision.value);
    const refuse = (why: string) => {
      const id = `${decision.origin}/${decision.id}`;
      if (this.refusedIds.has(id)) return null;
      this.refusedIds.add(id);
      this.options.log.warn(
        {
          event: 'refused',
          target: decision.value,
          source: 'fleet',
          origin: decision.origin,
          fleetHost: decision.host,
          decisionId: decision.id,
          why,
        },
        `refused the fleet's ban of ${decision.value} ` +
          `(${decision.origin}${decision.host ? ` from ${decision.host}` : ''}): ${why}`,
      );
      return null;
    };
    if (cidr === null) return refuse('not an address or network');
    if (cidr.prefix === 0) return refuse('it covers every address');
    if (this.options.protectedSet().overlaps(cidr))
      return refuse('it covers an allowlisted, loopback or one of this host’s own addresses');
    return { key: formatCidr(cidr), cidr };
  }

  private longest(key: string): FleetDecision | undefined {
    let best: FleetDecision | undefined;
    for (const d of this.known.get(key)?.values() ?? [])
      if (best === undefined || d.expiresAt > best.expiresAt) best = d;
    return best;
  }

  private added(decision: FleetDecision, now: number): void {
    const gated = this.gate(decision);
    if (gated === null) return;
    let decisions = this.known.get(gated.key);
    if (decisions === undefined) {
      decisions = new Map();
      this.known.set(gated.key, decisions);
    }
    decisions.set(decision.id, decision);
    this.apply(gated.key, gated.cidr, now);
  }

  private deleted(decision: FleetDecision, now: number): void {
    const cidr = parseCidr(decision.value);
    if (cidr === null) return;
    const key = formatCidr(cidr);
    const decisions = this.known.get(key);
    if (decisions === undefined) {
      // After a restart, a stream read on from the saved cursor replays deletions of bans pulled
      // before it, which only the store remembers.
      if (this.options.enforcer.store.get(key)?.fleet?.decisionId === decision.id) this.apply(key, cidr, now);
      return;
    }
    // Repeats are normal (the LAPI reports a deletion for ~2 s of pulls).
    if (!decisions.delete(decision.id)) return;
    if (decisions.size === 0) this.known.delete(key);
    this.apply(key, cidr, now);
  }

  /** Starts counting a batch's changes; quiet when it is a bulk one. */
  private startBatch(count: number): void {
    this.quiet = count > BULK_LINES;
    this.tally = { applied: 0, extended: 0, lifted: 0 };
  }

  /** Reconciles with a complete list: fleet bans not in it are lifted, the others set. */
  private applyAll(decisions: readonly FleetDecision[], now: number, why: string): void {
    this.startBatch(decisions.length);
    try {
      this.reconcileAll(decisions, now, why);
    } finally {
      this.quiet = false;
    }
  }

  private reconcileAll(decisions: readonly FleetDecision[], now: number, why: string): void {
    this.known.clear();
    for (const decision of decisions) {
      const gated = this.gate(decision);
      if (gated === null) continue;
      let known = this.known.get(gated.key);
      if (known === undefined) {
        known = new Map();
        this.known.set(gated.key, known);
      }
      known.set(decision.id, decision);
    }
    let lifted = 0;
    let set = 0;
    const store = this.options.enforcer.store;
    const stale: string[] = [];
    for (const ban of store.values())
      if (ban.fleet !== undefined && !this.known.has(ban.target)) stale.push(ban.target);
    for (const target of stale) {
      this.apply(target, parseCidr(target)!, now);
      lifted++;
    }
    for (const key of this.known.keys()) if (this.apply(key, parseCidr(key)!, now)) set++;
    if (lifted + set > 0 || why === 'start-up pull') {
      this.options.log.info(
        {
          event: 'fleet-sync',
          during: why,
          decisions: decisions.length,
          applied: set,
          lifted,
          engine: this.options.engine.name,
        },
        `fleet ${why}: ${decisions.length} decision(s); ${set} applied, ${lifted} lifted` +
          (this.quiet && set + lifted > 0 ? ' (a line per ban at debug level)' : ''),
      );
    }
  }

  /** Makes the store's fleet part of `key` the longest known decision, or lifts it; true when something changed. */
  private apply(key: string, cidr: Cidr, now: number): boolean {
    const { enforcer, log } = this.options;
    const store = enforcer.store;
    const best = this.longest(key);
    const dry = enforcer.backend.dryRun;
    this.applying = true;
    try {
      if (best === undefined) {
        const existing = store.get(key);
        if (existing?.fleet === undefined) return false;
        const left = store.liftFleet(key);
        const level = this.quiet ? 'debug' : 'info';
        if (left === undefined) {
          enforcer.queue.push('delete', cidr);
          this.readdInner(cidr);
          this.tally.lifted++;
          log[level](
            {
              event: 'unban',
              target: key,
              source: 'fleet',
              origin: existing.fleet.origin,
              fleetHost: existing.fleet.host,
              dryRun: dry,
            },
            `${dry ? 'dry-run: would lift' : 'lifted'} fleet ban of ${key} (the fleet's decision went)`,
          );
        } else if (left !== null) {
          if (this.retimes) enforcer.queue.push('add', cidr, left.expiresAt, key);
          log[level](
            { event: 'fleet-sync', target: key, expiresAt: formatInstant(left.expiresAt) },
            `the fleet's decision for ${key} went; its local ban stays until ${formatInstant(left.expiresAt)}`,
          );
        }
        return true;
      }
      if (best.expiresAt <= now) return false;
      const existing = store.get(key);
      if (existing === undefined && store.size >= this.options.maxActive()) {
        store.refused++;
        store.touch();
        log.warn(
          { event: 'refused', target: key, source: 'fleet', why: 'max_active', active: store.size },
          `refused the fleet's ban of ${key}: ban.max_active (${this.options.maxActive()}) bans are active`,
        );
        return false;
      }
      const result = store.setFleet(
        key,
        { host: best.host, origin: best.origin, decisionId: best.id, expiresAt: best.expiresAt },
        best.rule,
        now,
      );
      if (result === 'unchanged' || result === 'recorded') return result === 'recorded';
      const ban = store.get(key)!;
      if (result === 'added' || this.retimes) enforcer.queue.push('add', cidr, ban.expiresAt, key);
      if (result === 'added') this.tally.applied++;
      else this.tally.extended++;
      const level = this.quiet ? 'debug' : 'info';
      const expiresAt = formatInstant(ban.expiresAt);
      const from = best.host !== '' ? `from ${best.host}` : `origin ${best.origin}`;
      log[level](
        {
          event: 'ban',
          target: key,
          rule: best.rule,
          source: 'fleet',
          origin: best.origin,
          fleetHost: best.host,
          decisionId: best.id,
          expiresAt,
          extended: result === 'extended',
          dryRun: dry,
        },
        // Built at debug too: the notifications quote it.
        `${dry ? 'dry-run: would ban' : result === 'extended' ? 'extended ban of' : 'ban'} ` +
          `${key} (fleet, ${from}) until ${expiresAt}`,
      );
      return true;
    } finally {
      this.applying = false;
    }
  }

  /**
   * Whether a changed expiry is applied again: ipset's add -exist sets the new kernel timeout; an
   * iptables rule has none, and adding it again would make a duplicate (nftables' kernel timeout
   * is only a safety net there: reconcile puts back a rule it dropped early).
   */
  private get retimes(): boolean {
    return this.options.enforcer.backend.kind === 'ipset';
  }

  /** Bans inside a lifted network may have leaned on its rule: they get their own, as an unban does. */
  private readdInner(network: Cidr): void {
    if (network.prefix >= bitsOf(network.family)) return;
    for (const inner of this.options.enforcer.store.values() as IterableIterator<Ban>) {
      const cidr = parseCidr(inner.target)!;
      if (cidrContains(network, cidr)) this.options.enforcer.queue.push('add', cidr, inner.expiresAt);
    }
  }

  /** True while a pulled change is being applied (its log lines are the fleet's, not this host's). */
  get applyingPulled(): boolean {
    return this.applying;
  }
}
