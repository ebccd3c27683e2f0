// The daemon's Prometheus metrics: counters fed by its logged events (so the log and the metrics
// never disagree), gauges read from the ban store and the queue when Prometheus scrapes, and the
// scan figures set once per scan. Names follow Prometheus' conventions: `floodgate_` prefix,
// `_total` counters, base units (`_seconds`).
import { createRequire } from 'node:module';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LoggedEvent } from '../log-events.js';
import { FLOOD_COUNTERS, type FloodCounter, type FloodCounters } from '../table/kernel-counters.js';
import { STATES } from '../table/socket-row.js';
import type { SocketTable } from '../table/socket-table.js';

/** What the gauges read at scrape time; absent until the firewall backend is open. */
export interface MetricsSource {
  readonly backend: string;
  readonly mode: 'dry-run' | 'enforce';
  readonly activeBans: () => number;
  readonly queueDepth: () => number;
  /** When the oldest waiting firewall change was queued (epoch ms); undefined when none waits. */
  readonly oldestQueuedAt: () => number | undefined;
}

/** The kernel's TcpExt counters as Prometheus names (snake case, `_total`). */
export const KERNEL_COUNTER_NAMES: Readonly<Record<FloodCounter, string>> = {
  SyncookiesSent: 'floodgate_kernel_syncookies_sent_total',
  SyncookiesRecv: 'floodgate_kernel_syncookies_recv_total',
  SyncookiesFailed: 'floodgate_kernel_syncookies_failed_total',
  ListenOverflows: 'floodgate_kernel_listen_overflows_total',
  ListenDrops: 'floodgate_kernel_listen_drops_total',
  TCPReqQFullDrop: 'floodgate_kernel_reqq_full_drop_total',
  TCPReqQFullDoCookies: 'floodgate_kernel_reqq_full_do_cookies_total',
};

export const REFUSAL_REASONS = ['max_active', 'protected', 'set_full'] as const;
export const UNBAN_REASONS = ['expired', 'manual', 'allowlist', 'flush', 'fleet'] as const;

/** Scans take a millisecond on a quiet host and seconds with a million sockets. */
const SCAN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// The single executable has no package.json beside it: scripts/package.mjs defines this name as the version.
declare const FLOODGATE_VERSION: string | undefined;
function version(): string {
  if (typeof FLOODGATE_VERSION === 'string') return FLOODGATE_VERSION;
  // dist/src/metrics/ when built, src/metrics/ when run from source (the tests).
  const require = createRequire(import.meta.url);
  for (const path of ['../../../package.json', '../../package.json']) {
    try {
      const found = require(path) as { name?: string; version?: string };
      if (found.name === 'floodgate' && typeof found.version === 'string') return found.version;
    } catch {
      // not there: the other layout
    }
  }
  return 'unknown';
}

/** Where a ban came from: the fleet may say so itself (`origin`); manual bans have rule `manual`. */
function originOf(fields: LoggedEvent['fields']): string {
  if (typeof fields.origin === 'string') return fields.origin;
  return fields.rule === 'manual' ? 'manual' : 'detector';
}

export class FloodgateMetrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  private counters: FloodCounters | undefined;

  private readonly bans: Counter<'rule' | 'origin'>;
  private readonly refused: Counter<'reason'>;
  private readonly unbans: Counter<'reason'>;
  private readonly reconcile: Counter<'kind'>;
  private readonly firewallFailures: Counter<'backend' | 'operation'>;
  private readonly hookRuns: Counter;
  private readonly hookFailures: Counter;
  private readonly reloads: Counter<'result'>;
  private readonly scanDuration: Histogram;
  private readonly sockets: Gauge<'state'>;
  private readonly lastScan: Gauge;
  private readonly attack: Gauge;

  constructor(options: { readonly rules?: readonly string[] } = {}) {
    const registers = [this.registry];
    const self = this;
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges `_total`, which Prometheus reserves for counters (promtool
    // check metrics refuses them); the same figures stay, by type, in nodejs_active_handles etc.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'floodgate_build_info',
      help: 'Always 1; the labels say which floodgate and Node.js run.',
      labelNames: ['version', 'nodejs'],
      registers,
    }).set({ version: version(), nodejs: process.versions.node }, 1);
    new Gauge({
      name: 'floodgate_bans_active',
      help: 'Bans in force now (dry-run bans under mode="dry-run").',
      labelNames: ['backend', 'mode'],
      registers,
      collect() {
        this.reset();
        if (self.source) this.set({ backend: self.source.backend, mode: self.source.mode }, self.source.activeBans());
      },
    });
    new Gauge({
      name: 'floodgate_queue_depth',
      help: 'Firewall changes (bans and unbans) waiting in the decision queue.',
      registers,
      collect() {
        this.set(self.source?.queueDepth() ?? 0);
      },
    });
    new Gauge({
      name: 'floodgate_queue_oldest_age_seconds',
      help: 'How long the oldest waiting firewall change has waited; 0 when none waits.',
      registers,
      collect() {
        const since = self.source?.oldestQueuedAt();
        this.set(since === undefined ? 0 : Math.max(0, Date.now() - since) / 1000);
      },
    });
    for (const name of FLOOD_COUNTERS) {
      new Counter({
        name: KERNEL_COUNTER_NAMES[name],
        help: `The kernel's TcpExt ${name} counter (/proc/net/netstat), as of the last scan.`,
        registers,
        collect() {
          // The kernel counts; this only repeats its figure (a counter has no set()).
          this.reset();
          this.inc(self.counters?.[name] ?? 0);
        },
      });
    }
    this.bans = new Counter({
      name: 'floodgate_bans_total',
      help: 'Bans made, by rule and by origin (detector, manual, fleet).',
      labelNames: ['rule', 'origin'],
      registers,
    });
    for (const rule of options.rules ?? []) this.bans.inc({ rule, origin: 'detector' }, 0);
    this.bans.inc({ rule: 'manual', origin: 'manual' }, 0);
    this.refused = new Counter({
      name: 'floodgate_bans_refused_total',
      help: 'Bans refused: max_active (the cap), protected (allowlisted or own address), set_full (the firewall set).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of REFUSAL_REASONS) this.refused.inc({ reason }, 0);
    this.unbans = new Counter({
      name: 'floodgate_unbans_total',
      help: 'Bans lifted: expired, manual (floodgate unban), allowlist (a reload allowlisted it), flush.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of UNBAN_REASONS) this.unbans.inc({ reason }, 0);
    this.reconcile = new Counter({
      name: 'floodgate_reconcile_repairs_total',
      help:
        'Repairs by reconcile: missing rules re-applied, extra ' +
        'rules removed, setup pieces (chains, sets) restored.',
      labelNames: ['kind'],
      registers,
    });
    for (const kind of ['missing', 'extra', 'setup']) this.reconcile.inc({ kind }, 0);
    this.firewallFailures = new Counter({
      name: 'floodgate_firewall_failures_total',
      help: 'Firewall commands that failed, by backend and operation (ban, unban, commit).',
      labelNames: ['backend', 'operation'],
      registers,
    });
    this.hookRuns = new Counter({
      name: 'floodgate_reload_hook_runs_total',
      help: 'Runs of the reload hook (reload.command), failed ones included.',
      registers,
    });
    this.hookFailures = new Counter({
      name: 'floodgate_reload_hook_failures_total',
      help: 'Runs of the reload hook that failed or timed out.',
      registers,
    });
    this.reloads = new Counter({
      name: 'floodgate_policy_reloads_total',
      help: 'Policy reloads (SIGHUP), applied or refused.',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['applied', 'refused']) this.reloads.inc({ result }, 0);
    this.scanDuration = new Histogram({
      name: 'floodgate_scan_duration_seconds',
      help: 'How long one scan (read the table, detect, queue the bans) took.',
      buckets: SCAN_BUCKETS,
      registers,
    });
    this.sockets = new Gauge({
      name: 'floodgate_sockets',
      help: 'Sockets seen by the last scan, by TCP state (UNCONN: unconnected UDP).',
      labelNames: ['state'],
      registers,
    });
    for (const state of STATES) this.sockets.set({ state }, 0);
    this.lastScan = new Gauge({
      name: 'floodgate_last_scan_timestamp_seconds',
      help: 'When the last scan ended (Unix time); a stale value means the loop is stuck.',
      registers,
    });
    this.attack = new Gauge({
      name: 'floodgate_attack',
      help: '1 while a SYN flood is on that no source or network crosses a threshold for (nothing to ban), else 0.',
      registers,
    });
    this.attack.set(0);
  }

  /** The store and queue the gauges read, once the firewall backend is open. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  /** One scan's figures: its duration, its sockets by state, the kernel's counters, the attack signal. */
  scanned(scan: {
    readonly durationMs: number;
    readonly table: SocketTable;
    readonly counters: FloodCounters;
    readonly attack: boolean;
    readonly at: number;
  }): void {
    this.scanDuration.observe(scan.durationMs / 1000);
    const byState = new Array<number>(STATES.length).fill(0);
    const { states, length } = scan.table;
    for (let i = 0; i < length; i++) byState[states[i]!]!++;
    for (const [i, state] of STATES.entries()) this.sockets.set({ state }, byState[i]!);
    this.counters = scan.counters;
    this.attack.set(scan.attack ? 1 : 0);
    this.lastScan.set(scan.at / 1000);
  }

  /** For tapEvents: counts what the daemon logs. */
  readonly onEvent = (event: LoggedEvent): void => {
    const { fields } = event;
    switch (fields.event) {
      case 'ban':
        // A fleet decision that only lengthens a local ban makes no new ban.
        if (fields.extended !== true) this.bans.inc({ rule: String(fields.rule), origin: originOf(fields) });
        break;
      case 'refused': {
        const why = fields.why === 'firewall-full' ? 'set_full' : String(fields.why);
        this.refused.inc({ reason: why });
        break;
      }
      case 'expire':
        this.unbans.inc({ reason: 'expired' });
        break;
      case 'unban':
        // An unban of a target with no ban (removing a stray rule) lifts nothing; the fleet's lifts
        // (its decision went) carry no rule but a source.
        if (fields.source === 'fleet') this.unbans.inc({ reason: 'fleet' });
        else if (fields.rule !== undefined)
          this.unbans.inc({ reason: fields.why === 'allowlist' ? 'allowlist' : 'manual' });
        break;
      case 'flush':
        if (typeof fields.bans === 'number' && fields.bans > 0) this.unbans.inc({ reason: 'flush' }, fields.bans);
        break;
      case 'reconcile':
        for (const [field, kind] of [
          ['missing', 'missing'],
          ['extra', 'extra'],
          ['repaired', 'setup'],
        ] as const) {
          const n = fields[field];
          if (typeof n === 'number' && n > 0) this.reconcile.inc({ kind }, n);
        }
        break;
      case 'reload-hook':
        this.hookRuns.inc();
        break;
      case 'reload':
        this.reloads.inc({ result: fields.applied === true ? 'applied' : 'refused' });
        break;
      case 'error':
        if (fields.during === 'reload-hook') {
          this.hookRuns.inc();
          this.hookFailures.inc();
        } else if (
          (fields.during === 'commit' || fields.during === 'ban' || fields.during === 'unban') &&
          typeof fields.backend === 'string'
        ) {
          this.firewallFailures.inc({ backend: fields.backend, operation: fields.during });
        }
        break;
    }
  };

  /** The text exposition, as GET /metrics serves it. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }
}
