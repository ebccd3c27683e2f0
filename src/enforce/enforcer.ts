// Turns decisions into bans: checks each against the safety lists and the cap, records it in the
// store (which is authoritative), and has the decision queue make the firewall match. Used by the
// daemon and, when no daemon runs, by the manual commands directly.
import type { Ban, BanStore } from '../bans/ban-store.js';
import {
  type CommitResult,
  type FirewallBackend,
  type FirewallChange,
  FirewallFullError,
} from '../firewall/backend.js';
import { killCommands } from '../hooks/kill-connections.js';
import type { ReloadHook } from '../hooks/reload-hook.js';
import type { Logger } from '../log.js';
import { CidrSet } from '../net/cidr-set.js';
import { type Cidr, bitsOf, cidrContains, formatCidr, parseCidr } from '../net/ip.js';
import { formatDuration, formatInstant } from '../policy/duration.js';
import { BackendUnavailableError, CommandFailedError } from '../errors.js';
import type { CommandRunner } from '../system/command-runner.js';
import { shellCommand } from '../system/shell-quote.js';
import { DecisionQueue } from './decision-queue.js';

export interface EnforcerOptions {
  readonly backend: FirewallBackend;
  readonly store: BanStore;
  readonly log: Logger;
  readonly runner: CommandRunner;
  /** Never banned: allowlist, loopback, the host's own addresses. */
  readonly protectedSet: CidrSet;
  readonly rate: number;
  readonly maxActive: number;
  readonly killConnections: boolean;
  readonly reload?: ReloadHook;
  readonly clock?: () => number;
}

/** A list longer than this logs one summary line at info, and a line per ban at debug. */
export const BULK_LINES = 100;

export type BanOutcome =
  | { readonly status: 'banned'; readonly ban: Ban }
  | { readonly status: 'already'; readonly ban: Ban }
  | { readonly status: 'refused'; readonly reason: string };

export interface BanRequest {
  readonly target: Cidr;
  readonly rule: string;
  readonly count: number;
  readonly reason?: string;
  /** Base ttl before the repeat-offender doubling; the policy's ttl when absent. */
  readonly ttl?: number;
  /** Manual bans may cover protected addresses when the operator insists (--force). */
  readonly force?: boolean;
}

export class Enforcer {
  readonly queue: DecisionQueue;
  private readonly clock: () => number;

  constructor(private options: EnforcerOptions) {
    this.clock = options.clock ?? Date.now;
    this.queue = new DecisionQueue(options.backend, {
      rate: options.rate,
      // Audit lines first: a ban is never saved or in the firewall without its line in the log.
      // A failed save (a full disk) is reported and retried, and the batch still goes to the
      // firewall: enforcement never waits for the disk.
      beforeCommit: () => {
        options.log.flush();
        this.persist();
      },
      onCommit: (result) => this.afterCommit(result),
      onError: (error, changes) => {
        options.log.error(
          { event: 'error', during: 'commit', backend: options.backend.kind, changes: changes.length, err: error },
          `firewall commit failed: ${(error as Error).message}`,
        );
      },
    });
  }

  /** A policy reload: the protected set, rate, cap, kill_connections and reload hook from now on. */
  update(
    settings: Required<Pick<EnforcerOptions, 'protectedSet' | 'rate' | 'maxActive' | 'killConnections'>> & {
      readonly reload: ReloadHook | undefined;
    },
  ): void {
    if (settings.reload !== this.options.reload) this.options.reload?.stop();
    if (settings.rate !== this.options.rate) this.queue.setRate(settings.rate);
    this.options = { ...this.options, ...settings };
  }

  get reloadHook(): ReloadHook | undefined {
    return this.options.reload;
  }

  get runner(): CommandRunner {
    return this.options.runner;
  }

  private lastSaveErrorLog = -Infinity;

  /**
   * Saves the store if it changed; true when it is saved. A failure is logged (at once, then every
   * minute while it lasts) and never thrown: the bans stay in force, and the next call tries again.
   */
  persist(countersEveryMs?: number): boolean {
    const { store, log } = this.options;
    const failing = store.saveFailure !== undefined;
    if (store.trySave(countersEveryMs, this.clock())) {
      if (failing) log.info({ event: 'saved', file: store.file }, `the ban store ${store.file} is saved again`);
      return true;
    }
    const failure = store.saveFailure!;
    const now = this.clock();
    if (!failing || now - this.lastSaveErrorLog >= 60_000) {
      this.lastSaveErrorLog = now;
      log.error(
        {
          event: 'error',
          during: 'save',
          file: store.file,
          code: failure.code,
          since: new Date(failure.since).toISOString(),
          message: failure.message,
        },
        `could not save the ban store: ${failure.message}. Bans stay in force and saving is ` +
          `retried; changes since ${new Date(failure.since).toISOString()} are not on disk yet`,
      );
    }
    return false;
  }

  get backend(): FirewallBackend {
    return this.options.backend;
  }

  get store(): BanStore {
    return this.options.store;
  }

  private command(op: FirewallChange['op'], target: Cidr, expiresAt?: number): string {
    // With the expiry, so that a kernel timeout shows as the one applied (not `timeout 0`, permanent).
    return shellCommand(this.options.backend.command({ op, target, ...(expiresAt !== undefined && { expiresAt }) }));
  }

  /**
   * `quiet` logs the ban's line at debug, not info: a caller banning a long list logs one summary
   * line instead (a line per ban was most of a 10k list's time). The event still reaches the log's
   * taps (fleet push, ban history, metrics) whatever the level.
   */
  ban(request: BanRequest, now = this.clock(), quiet = false): BanOutcome {
    const { store, log, backend } = this.options;
    const target = formatCidr(request.target);
    const existing = store.get(target);
    if (existing !== undefined) return { status: 'already', ban: existing };
    // Objects of one fixed shape (reason undefined rather than absent; pino and JSON leave it out):
    // a manual ban list makes 10k of them in one go.
    const { rule, count, reason } = request;
    if (!request.force && this.options.protectedSet.overlaps(request.target)) {
      const why = 'it is allowlisted, loopback or one of this host’s own addresses';
      log.warn({ event: 'refused', target, rule, count, reason, why: 'protected' }, `refused to ban ${target}: ${why}`);
      return { status: 'refused', reason: why };
    }
    if (store.size >= this.options.maxActive) {
      store.refused++;
      store.touch();
      const why = `ban.max_active (${this.options.maxActive}) bans are active`;
      log.warn(
        { event: 'refused', target, rule, count, reason, why: 'max_active', active: store.size },
        `refused to ban ${target}: ${why}`,
      );
      return { status: 'refused', reason: why };
    }
    const ttl = store.ttlFor(target, now, request.ttl);
    // The queue saves the store before it touches the firewall: after a crash, reconcile re-applies
    // what the store holds.
    const ban = store.add(
      reason === undefined ? { target, rule, count, createdAt: now } : { target, rule, count, reason, createdAt: now },
      ttl,
    );
    this.queue.push('add', request.target, ban.expiresAt, target);
    const ttlText = formatDuration(ttl);
    const level = quiet ? 'debug' : 'info';
    log[level](
      {
        event: 'ban',
        target,
        rule,
        count,
        reason,
        ttl: ttlText,
        expiresAt: formatInstant(ban.expiresAt),
        dryRun: backend.dryRun,
        // Only for a line that is written: the taps do not need it.
        command: log.isLevelEnabled(level) ? this.command('add', request.target, ban.expiresAt) : undefined,
      },
      `${backend.dryRun ? 'dry-run: would ban' : 'ban'} ${target} ` +
        `(${rule}${count ? `, ${count} sockets` : ''}) for ${ttlText}`,
    );
    return { status: 'banned', ban };
  }

  /**
   * Bans a list (a manual command's targets). Up to BULK_LINES of them log a line each at info, as
   * single bans do; a longer list logs each ban at debug and one summary line at info, before any of
   * them is saved or reaches the firewall.
   */
  banList(requests: readonly BanRequest[], now = this.clock()): BanOutcome[] {
    const quiet = requests.length > BULK_LINES;
    const started = this.clock();
    const outcomes = requests.map((request) => this.ban(request, now, quiet));
    if (!quiet) return outcomes;
    const counts = { banned: 0, already: 0, refused: 0 };
    for (const outcome of outcomes) counts[outcome.status]++;
    const rules = [...new Set(requests.map((r) => r.rule))].join(', ');
    const dryRun = this.options.backend.dryRun;
    this.options.log.info(
      { event: 'bans', rule: rules, ...counts, dryRun, tookMs: this.clock() - started },
      `${dryRun ? 'dry-run: would ban' : 'banned'} ${counts.banned} of a list of ${requests.length} (${rules}); ` +
        `${counts.already} already banned, ${counts.refused} refused; a line per ban at debug level, ` +
        'and each in `floodgate list` and the ban history',
    );
    return outcomes;
  }

  /**
   * Lifts a ban; the target is not banned again by the detector for `graceMs`. `why` says, in the
   * log line (and so in the metrics), that a reload's allowlist lifted it rather than an operator.
   */
  unban(
    target: Cidr,
    graceMs: number,
    event: 'unban' | 'expire' = 'unban',
    now = this.clock(),
    why?: 'allowlist',
  ): Ban | undefined {
    const { store, log } = this.options;
    const key = formatCidr(target);
    const ban = store.remove(key);
    if (graceMs > 0) store.setGrace(key, now + graceMs);
    // Also when the store had no ban: a rule left behind (by a crash or by hand) is removed.
    this.queue.push('delete', target);
    if (target.prefix < bitsOf(target.family)) {
      // Bans inside this network may have leaned on its rule: they get their own now.
      for (const inner of store.values()) {
        const cidr = parseCidr(inner.target)!;
        if (cidrContains(target, cidr)) this.queue.push('add', cidr, inner.expiresAt);
      }
    }
    if (ban !== undefined || event === 'unban') {
      const { dryRun } = this.options.backend;
      const done = dryRun
        ? `dry-run: would ${event === 'expire' ? 'expire' : 'lift'}`
        : event === 'expire'
          ? 'expired'
          : 'lifted';
      const noBan = dryRun ? ' (no active ban)' : ' (no active ban; any rule left is removed)';
      log.info(
        {
          event,
          target: key,
          rule: ban?.rule,
          count: ban?.count,
          ttl: ban && formatDuration(ban.ttl),
          ...(why !== undefined && { why }),
          dryRun: this.options.backend.dryRun,
          command: this.command('delete', target),
          ...(graceMs > 0 && { graceUntil: new Date(now + graceMs).toISOString() }),
        },
        `${done} ban of ${key}${ban === undefined ? noBan : ''}`,
      );
    }
    return ban;
  }

  /** Removes bans whose absolute expiry has passed. */
  expire(now = this.clock()): number {
    const expired = this.options.store.expired(now);
    for (const ban of expired) this.unban(parseCidr(ban.target)!, 0, 'expire', now);
    return expired.length;
  }

  /**
   * Makes the firewall match the store: re-applies missing rules of active bans and removes tagged
   * rules that no active ban explains (including duplicates). Returns what it found.
   */
  reconcile(): Promise<{ missing: number; extra: number }> {
    return this.queue.exclusive(() => this.reconcileNow());
  }

  private async reconcileNow(): Promise<{ missing: number; extra: number }> {
    const { store, backend, log } = this.options;
    const repaired = (await backend.repair?.()) ?? 0;
    if (repaired > 0)
      log.warn(
        { event: 'reconcile', repaired, backend: backend.kind },
        `reconcile: restored ${repaired} piece(s) of floodgate's firewall setup that had been removed`,
      );
    const actual = new Map<string, number>();
    // A ban inside a banned network is enforced by the network's rule (nftables cannot even hold
    // both in one interval set); it gets its own again when the network's ban ends. Only networks
    // can cover another ban: at 100k address bans, a set of them all cost 5 MB for nothing.
    const networks = new CidrSet();
    for (const cidr of await backend.list()) {
      const key = formatCidr(cidr);
      actual.set(key, (actual.get(key) ?? 0) + 1);
      if (cidr.prefix < bitsOf(cidr.family)) networks.add(cidr);
    }
    let missing = 0;
    let extra = 0;
    for (const ban of store.values()) {
      if (actual.has(ban.target)) continue; // the common case, and no parsing for it
      const cidr = parseCidr(ban.target)!;
      if (!networks.covers(cidr) && !this.queue.has(ban.target, 'add')) {
        missing++;
        this.queue.push('add', cidr, ban.expiresAt);
      }
    }
    for (const [target, copies] of actual) {
      const wanted = store.get(target) !== undefined ? 1 : 0;
      if (copies > wanted && !this.queue.has(target, 'delete')) {
        extra += copies - wanted;
        for (let i = 0; i < copies - wanted; i++) backend.delete(parseCidr(target)!);
      }
    }
    // Surplus copies go straight to the backend: the queue keeps one change per target.
    if (extra > 0) await backend.commit();
    if (missing + extra > 0) {
      log.warn(
        { event: 'reconcile', missing, extra, backend: backend.kind },
        `reconcile: re-applying ${missing} missing rule(s), removing ${extra} rule(s) no active ban explains`,
      );
    }
    return { missing, extra };
  }

  /** Removes every rule floodgate owns and clears its bans. */
  async flush(): Promise<number> {
    const { store, backend, log } = this.options;
    await this.queue.drain();
    const cleared = store.clear();
    this.persist();
    await backend.flush();
    log.info(
      { event: 'flush', bans: cleared.length, dryRun: backend.dryRun },
      backend.dryRun
        ? `dry-run: cleared ${cleared.length} would-be ban(s); the firewall was not changed`
        : `flushed ${cleared.length} ban(s) and every rule floodgate owns`,
    );
    return cleared.length;
  }

  private async afterCommit(result: CommitResult): Promise<void> {
    const { log, backend } = this.options;
    for (const { change, error } of result.failed) {
      if (change.op === 'add' && error instanceof FirewallFullError) {
        const target = formatCidr(change.target);
        this.options.store.remove(target);
        this.options.store.refused++;
        log.error(
          { event: 'refused', target, why: 'firewall-full', backend: backend.kind, message: error.message },
          `REFUSED ban of ${target}: the firewall set is full (${error.message}); raise ban.max_active`,
        );
        continue;
      }
      const failure =
        error instanceof CommandFailedError
          ? { command: shellCommand(error.argv), exitCode: error.commandExitCode, stderr: error.stderr.trim() }
          : { message: error.message };
      log.error(
        {
          event: 'error',
          during: change.op === 'add' ? 'ban' : 'unban',
          target: formatCidr(change.target),
          backend: backend.kind,
          ...failure,
        },
        `could not ${change.op === 'add' ? 'add' : 'remove'} the ` +
          `rule for ${formatCidr(change.target)}; reconcile will retry`,
      );
    }
    // Nothing to do with the new bans (the bulk-ban setting): skip a pass over every change.
    if (!this.options.killConnections && this.options.reload === undefined) return;
    const added = result.applied
      .filter((c) => c.op === 'add' && this.options.store.get(formatCidr(c.target)) !== undefined)
      .map((c) => c.target);
    if (added.length === 0) return;
    if (this.options.killConnections) await this.killConnections(added);
    this.options.reload?.trigger();
  }

  private async killConnections(targets: Cidr[]): Promise<void> {
    const { log, runner, backend } = this.options;
    for (const argv of killCommands(targets)) {
      if (backend.dryRun) {
        log.info(
          { event: 'kill-connections', dryRun: true, command: shellCommand(argv) },
          `dry-run: would close existing connections: ${shellCommand(argv)}`,
        );
        continue;
      }
      const result = await runner
        .run(argv, { reject: false, timeoutMs: 10_000 })
        .catch((error: Error) => ({ exitCode: -1, stdout: '', stderr: error.message }));
      if (result.exitCode !== 0)
        log.warn(
          {
            event: 'error',
            during: 'kill-connections',
            command: shellCommand(argv),
            exitCode: result.exitCode,
            stderr: result.stderr.trim(),
          },
          'could not close existing connections',
        );
    }
  }

  /**
   * Applies everything queued, then saves: for a manual command, which reports what it did. The
   * firewall is changed even when the save fails; then this throws, so that the command says so.
   */
  async close(): Promise<void> {
    await this.queue.drain();
    this.options.log.flush();
    if (!this.persist(0))
      throw this.unsavedError(
        'the next floodgate command or start will undo what this one changed; free space there and run it again',
      );
  }

  /**
   * Finishes the batch in flight and saves, trying the save a few times; what still waits is
   * re-applied at the next start. Throws, after the bans are applied, when the store could not be
   * saved at all.
   */
  async stop(retries = 3, retryMs = 1000): Promise<void> {
    await this.queue.stop();
    this.options.log.flush();
    for (let attempt = 0; !this.persist(0); attempt++) {
      if (attempt >= retries)
        throw this.unsavedError(
          'the rules stay in the firewall, but the next start does not know them ' +
            'and removes them; free space there before starting floodgate again',
        );
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  private unsavedError(consequence: string): BackendUnavailableError {
    const failure = this.options.store.saveFailure!;
    return new BackendUnavailableError(
      `the firewall is changed, but the ban store ${this.options.store.file} ` +
        `could not be saved (${failure.message}): ${consequence}`,
    );
  }
}
