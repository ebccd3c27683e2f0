// The ban store: floodgate's authoritative record of its bans, their absolute expiry, the repeat
// offenders it remembers and the unban grace periods. The firewall is made to match it, never the
// other way round. Time is passed in, never read here.
import { renameSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { ConflictError, UsageError } from '../errors.js';
import { CidrSet } from '../net/cidr-set.js';
import { type Cidr, parseCidr } from '../net/ip.js';
import { readStateFile, stateDirError, writeFileAtomic } from './state-file.js';
import { type FleetPart, type OutboxEntry, STORE_VERSION, type StoreVerdict, checkStore } from './store-check.js';

export type { FleetPart, OutboxEntry };

export interface Ban {
  /** Canonical address or CIDR. */
  readonly target: string;
  /** The detector rule that caused it, or "manual". */
  readonly rule: string;
  readonly reason?: string;
  /** The count the detector saw (0 for manual bans). */
  readonly count: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly ttl: number;
  /** The fleet's decision for this target, when there is one (a fleet ban, or a local ban it extends). */
  readonly fleet?: FleetPart;
  /** With `fleet`: the local ban's own expiry; absent when the ban is the fleet's alone. */
  readonly localExpiresAt?: number;
}

/** `local`, `fleet:<host>` for another floodgate's ban, or the engine's origin (crowdsec, cscli, …). */
export function banSource(ban: Ban): string {
  if (ban.fleet === undefined || ban.localExpiresAt !== undefined) return 'local';
  if (ban.fleet.origin === 'floodgate' && ban.fleet.host !== '') return `fleet:${ban.fleet.host}`;
  return ban.fleet.origin;
}

/** What a fleet decision did to the store. */
export type FleetApply = 'added' | 'extended' | 'recorded' | 'unchanged';

interface Offender {
  readonly lastTtl: number;
  readonly lastBanAt: number;
}

export interface LastScan {
  readonly at: number;
  readonly durationMs: number;
  readonly sockets: number;
}

export interface SaveFailure {
  /** When saves started failing: changes since then are not on disk. */
  readonly since: number;
  readonly message: string;
  readonly code?: string;
}

export interface LoadReport {
  /** One line per entry or field left out, or the reason the whole file was. */
  readonly problems: readonly string[];
  /** Where the original file was renamed (discarded) or copied to (entries left out). */
  readonly aside?: string;
  /** True when nothing in the file could be used. */
  readonly discarded: boolean;
}

export interface BanLimits {
  readonly ttl: number;
  readonly maxTtl: number;
}

/** How many repeat offenders are remembered at most. */
const OFFENDER_MEMORY = 100_000;

export class BanStore {
  private readonly bans = new Map<string, Ban>();
  private readonly offenders = new LRUCache<string, Offender>({ max: OFFENDER_MEMORY });
  private readonly grace = new Map<string, number>();
  refused = 0;
  lastScan: LastScan | undefined;
  /** Where the fleet engine resumes after a restart (a Redis stream id); the CrowdSec LAPI keeps its own. */
  private cursor: string | undefined;
  /** Changes waiting to be pushed to the fleet, oldest first; saved with the bans. */
  private outboxEntries: OutboxEntry[] = [];
  /** The last save's failure, since when saves have failed; undefined once one succeeds. */
  saveFailure: SaveFailure | undefined;
  /** What load() found wrong with the file, and where it put the original; undefined when sound. */
  loadReport: LoadReport | undefined;
  /** Bumped by every change to bans and grace periods: the suppressed set and the file follow it. */
  private version = 0;
  private savedVersion = 0;
  /** Counters (refusals, the last scan) changed since the last save; they alone never force one. */
  private countersChanged = false;
  private lastSaveAt = 0;
  /**
   * Active bans and targets in grace, kept up to date change by change
   * (rebuilding it at 100k bans cost 50 ms and 20 MB each time).
   */
  private suppressedSet = new CidrSet();

  constructor(
    /** Where the store is saved; undefined keeps it in memory only. */
    readonly file: string | undefined,
    private limits: BanLimits,
  ) {}

  /** A policy reload's ttl and max_ttl: for bans made from now on. */
  setLimits(limits: BanLimits): void {
    this.limits = limits;
  }

  /**
   * Reads the store, checking everything in it first (store-check.ts). With `repair` (the daemon
   * and commands that hold the state lock), a file that cannot be used is renamed aside and the
   * store starts empty, and entries that fail are left out, the original kept aside, so that the
   * next save writes only sound ones; `loadReport` says what happened. Without it (list, status),
   * an unusable file is an error and bad entries are skipped in memory only. A store written by a
   * newer floodgate is refused either way: it is not ours to rewrite.
   */
  static load(
    file: string,
    limits: BanLimits,
    options: { readonly repair?: boolean; readonly now?: number } = {},
  ): BanStore {
    const store = new BanStore(file, limits);
    const text = readStateFile(file);
    if (text === null) return store;
    let raw: unknown;
    let verdict: StoreVerdict;
    try {
      raw = JSON.parse(text);
      verdict = checkStore(raw);
    } catch (error) {
      verdict = { ok: false, why: `it is not valid JSON (${(error as Error).message})`, newer: false };
    }
    const aside = `${file}.corrupt-${new Date(options.now ?? Date.now()).toISOString().replace(/[:.]/g, '-')}`;
    if (!verdict.ok) {
      if (verdict.newer)
        throw new ConflictError(
          `the ban store ${file} cannot be read: ${verdict.why}; run ` +
            'that floodgate, or move the file away to start with no bans',
        );
      if (!options.repair) {
        throw new UsageError(
          `the ban store ${file} cannot be used: ${verdict.why}; the next \`floodgate ` +
            `run\` or ban, unban or flush sets it aside and starts with no bans`,
        );
      }
      try {
        renameSync(file, aside);
      } catch (error) {
        throw stateDirError(error, file, 'set aside the unusable ban store');
      }
      store.loadReport = { problems: [verdict.why], aside, discarded: true };
      return store;
    }
    const { state } = verdict;
    for (const ban of state.bans) {
      store.bans.set(ban.target, ban);
      store.suppressedSet.add(state.cidrs.get(ban.target)!);
    }
    for (const [target, offender] of state.offenders) store.offenders.set(target, offender);
    for (const [target, until] of state.grace) {
      store.grace.set(target, until);
      store.suppressedSet.add(state.cidrs.get(target)!);
    }
    store.refused = state.refused;
    store.lastScan = state.lastScan;
    store.outboxEntries = state.outbox;
    store.cursor = state.fleetCursor;
    if (state.problems.length > 0) {
      if (options.repair) {
        writeFileAtomic(aside, text);
        // The next save writes the store without what was left out.
        store.version++;
      }
      store.loadReport = { problems: state.problems, ...(options.repair && { aside }), discarded: false };
    }
    return store;
  }

  save(): void {
    if (this.file === undefined) return;
    writeFileAtomic(this.file, this.stateText());
    this.savedVersion = this.version;
    this.countersChanged = false;
    this.lastSaveAt = Date.now();
  }

  /**
   * Saves when something changed (see saveIfChanged), and never throws: a failure (a full disk, an
   * I/O error) is kept in `saveFailure` until a save succeeds, and what is unsaved stays marked so
   * that the next call tries again. Enforcement must not wait for the disk.
   */
  trySave(countersEveryMs?: number, now = Date.now()): boolean {
    try {
      this.saveIfChanged(countersEveryMs);
      this.saveFailure = undefined;
      return true;
    } catch (error) {
      const code =
        (error as NodeJS.ErrnoException).code ?? ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
      this.saveFailure = {
        since: this.saveFailure?.since ?? now,
        message: (error as Error).message,
        ...(code !== undefined && { code }),
      };
      return false;
    }
  }

  /**
   * The state file's JSON (the shape store-check.ts reads back) in pieces of about a thousand
   * entries: with 100k bans the whole text is ~17 MB, and building it as one string (with an array
   * of every ban and offender first) doubled the daemon's memory at each save.
   */
  private *stateText(): Generator<string> {
    const PIECE = 1000;
    function* list<T>(name: string, items: Iterable<T>): Generator<string> {
      yield `,${JSON.stringify(name)}:[`;
      let piece: string[] = [];
      let first = true;
      for (const item of items) {
        piece.push(JSON.stringify(item));
        if (piece.length === PIECE) {
          yield (first ? '' : ',') + piece.join(',');
          first = false;
          piece = [];
        }
      }
      if (piece.length > 0) yield (first ? '' : ',') + piece.join(',');
      yield ']';
    }
    yield `{"version":${STORE_VERSION}`;
    yield* list('bans', this.bans.values());
    // Oldest first, so that loading them in order keeps the newest the last to be evicted.
    yield* list('offenders', this.offenders.rentries());
    yield* list('grace', this.grace.entries());
    yield* list('outbox', this.outboxEntries);
    if (this.cursor !== undefined) yield `,"fleetCursor":${JSON.stringify(this.cursor)}`;
    yield `,"refused":${this.refused}${this.lastScan ? `,"lastScan":${JSON.stringify(this.lastScan)}` : ''}}`;
  }

  /**
   * Saves when a ban or grace period changed since the last save; counters alone are written at
   * most every `countersEveryMs`. Cheap to call often: with 100k bans the file is ~17 MB, and
   * writing it on every scan cost a third of the daemon's CPU.
   */
  saveIfChanged(countersEveryMs = 60_000): void {
    if (this.version !== this.savedVersion || (this.countersChanged && Date.now() - this.lastSaveAt >= countersEveryMs))
      this.save();
  }

  /** Marks a counter change (a refusal, a scan): saved with the next ban change, or within a minute. */
  touch(): void {
    this.countersChanged = true;
  }

  get size(): number {
    return this.bans.size;
  }

  /** How many changes to bans and grace periods there have been: grows by one with each. */
  get changes(): number {
    return this.version;
  }

  get(target: string): Ban | undefined {
    return this.bans.get(target);
  }

  /** Every active ban, in no particular order and without a copy. */
  values(): IterableIterator<Ban> {
    return this.bans.values();
  }

  /** Every active ban, oldest first. */
  all(): Ban[] {
    return [...this.bans.values()].sort((a, b) => a.createdAt - b.createdAt || (a.target < b.target ? -1 : 1));
  }

  /** The ttl a new ban of `target` gets: twice its last one if it was banned within max_ttl, capped. */
  ttlFor(target: string, now: number, base = this.limits.ttl): number {
    const offender = this.offenders.get(target);
    if (offender !== undefined && now - offender.lastBanAt <= this.limits.maxTtl) {
      return Math.min(Math.max(offender.lastTtl * 2, base), this.limits.maxTtl);
    }
    return Math.min(base, this.limits.maxTtl);
  }

  add(ban: Omit<Ban, 'expiresAt' | 'ttl'>, ttl: number): Ban {
    // Field by field: `{ ...ban, ttl, expiresAt }` cost V8 about 4 µs, a tenth of a manual ban's time,
    // and a spread object keeps its fields out of line, for as long as the ban is active.
    const { target, rule, reason, count, createdAt } = ban;
    const expiresAt = createdAt + ttl;
    const full: Ban =
      reason === undefined
        ? { target, rule, count, createdAt, ttl, expiresAt }
        : { target, rule, reason, count, createdAt, ttl, expiresAt };
    this.bans.set(full.target, full);
    this.offenders.set(full.target, { lastTtl: ttl, lastBanAt: full.createdAt });
    this.grace.delete(full.target);
    this.suppress(full.target);
    this.version++;
    return full;
  }

  remove(target: string): Ban | undefined {
    const ban = this.bans.get(target);
    if (ban !== undefined) {
      this.bans.delete(target);
      this.unsuppress(target);
      this.version++;
    }
    return ban;
  }

  clear(): Ban[] {
    const all = [...this.bans.values()];
    this.bans.clear();
    this.suppressedSet = new CidrSet();
    for (const target of this.grace.keys()) this.suppress(target);
    this.version++;
    return all;
  }

  setGrace(target: string, until: number): void {
    this.grace.set(target, until);
    this.suppress(target);
    this.version++;
  }

  /** When the unban grace period of `target` ends (ms), or undefined when it has none. */
  graceUntil(target: string): number | undefined {
    return this.grace.get(target);
  }

  inGrace(target: string, now: number): boolean {
    const until = this.grace.get(target);
    return until !== undefined && until > now;
  }

  expired(now: number): Ban[] {
    const out: Ban[] = [];
    for (const ban of this.bans.values()) if (ban.expiresAt <= now) out.push(ban);
    return out;
  }

  /** Active bans and targets in grace: the detector does not count them. */
  suppressed(now: number): CidrSet {
    for (const [target, until] of this.grace) {
      if (until <= now) {
        this.grace.delete(target);
        this.unsuppress(target);
        this.version++;
      }
    }
    return this.suppressedSet;
  }

  private suppress(target: string): void {
    const cidr = parseCidr(target);
    if (cidr !== null) this.suppressedSet.add(cidr);
  }

  /** Takes `target` out of the suppressed set, unless it is still banned or in grace. */
  private unsuppress(target: string): void {
    if (this.bans.has(target) || this.grace.has(target)) return;
    const cidr = parseCidr(target);
    if (cidr !== null) this.suppressedSet.delete(cidr);
  }

  get fleetCursor(): string | undefined {
    return this.cursor;
  }

  /** Records how far the fleet's changes are applied; saved with the next ban change. */
  set fleetCursor(cursor: string | undefined) {
    if (cursor === this.cursor) return;
    this.cursor = cursor;
    this.version++;
  }

  /** The fleet outbox, oldest first, without a copy. */
  get outbox(): readonly OutboxEntry[] {
    return this.outboxEntries;
  }

  /** Queues changes for the fleet; saved with the next save (at once, as a ban change). */
  enqueue(...entries: OutboxEntry[]): void {
    if (entries.length === 0) return;
    this.outboxEntries.push(...entries);
    this.version++;
  }

  /** Drops entries the fleet has taken (the first `count`, which were sent). */
  dequeue(count: number): void {
    if (count <= 0) return;
    this.outboxEntries.splice(0, count);
    this.version++;
  }

  /**
   * Records the fleet's decision for `target`. A target without a ban gets a fleet ban; a local ban
   * keeps its own expiry aside and lasts until the later of the two. Fleet bans never count as
   * repeat offences: their length is the deciding host's business. Replaces an earlier fleet part
   * (a resync may shorten it when the longest decision went).
   */
  setFleet(target: string, fleet: FleetPart, rule: string, now: number): FleetApply {
    const existing = this.bans.get(target);
    if (existing === undefined) {
      this.bans.set(target, {
        target,
        rule,
        count: 0,
        createdAt: now,
        ttl: Math.max(1, fleet.expiresAt - now),
        expiresAt: fleet.expiresAt,
        fleet,
      });
      this.grace.delete(target);
      this.suppress(target);
      this.version++;
      return 'added';
    }
    const f = existing.fleet;
    if (
      f !== undefined &&
      f.decisionId === fleet.decisionId &&
      f.origin === fleet.origin &&
      Math.abs(f.expiresAt - fleet.expiresAt) < 2000
    )
      return 'unchanged';
    const local = existing.fleet === undefined ? existing.expiresAt : existing.localExpiresAt;
    const expiresAt = local === undefined ? fleet.expiresAt : Math.max(local, fleet.expiresAt);
    const ban: Ban = { ...existing, expiresAt, fleet, ...(local !== undefined && { localExpiresAt: local }) };
    this.bans.set(target, ban);
    this.version++;
    return expiresAt > existing.expiresAt ? 'extended' : 'recorded';
  }

  /**
   * The fleet's decision for `target` went: lifts only what the fleet added. Returns the ban left
   * (the local one, back to its own expiry), or undefined when the ban is gone; null when the
   * target had no fleet part.
   */
  liftFleet(target: string): Ban | undefined | null {
    const existing = this.bans.get(target);
    if (existing?.fleet === undefined) return null;
    if (existing.localExpiresAt === undefined) {
      this.remove(target);
      return undefined;
    }
    const { fleet: _fleet, localExpiresAt, ...local } = existing;
    const ban: Ban = { ...local, expiresAt: localExpiresAt };
    this.bans.set(target, ban);
    this.version++;
    return ban;
  }

  targets(): Cidr[] {
    return [...this.bans.keys()].map((target) => parseCidr(target)!);
  }
}
