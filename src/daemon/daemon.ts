// `floodgate run`: every interval, table -> detector -> queue -> firewall; expiry, periodic
// reconcile, the control socket, and a clean stop on SIGTERM/SIGINT.
import { join, resolve } from 'node:path';
import { HistoryWriter } from '../bans/ban-history.js';
import { writeFileAtomic } from '../bans/state-file.js';
import { acquireLock, lockOwner, tryLock, type StateLock } from '../bans/state-lock.js';
import { detect } from '../detect/detector.js';
import { tapEvents } from '../log-events.js';
import { FloodgateMetrics } from '../metrics/metrics.js';
import { type MetricsServer, serveMetrics } from '../metrics/metrics-server.js';
import { ConflictError, UsageError } from '../errors.js';
import { Notifier } from '../hooks/notifier.js';
import type { Logger } from '../log.js';
import { buildAllowlist, hostAddresses } from '../net/allowlist.js';
import { parseCidr } from '../net/ip.js';
import { formatDuration } from '../policy/duration.js';
import type { Policy } from '../policy/schema.js';
import { type FloodCounters, counterRates } from '../table/kernel-counters.js';
import { readKernelCounters, readLiveTable } from '../table/live-table.js';
import { SocketTable } from '../table/socket-table.js';
import { collectGarbage } from '../system/collect-garbage.js';
import { type RunningFleet, createEngine, openFleet } from '../fleet/open-fleet.js';
import { controlHandler } from './control-requests.js';
import { type ControlServer, sendControl, serveControl } from './control-socket.js';
import { CONTROL_SOCKET, LOCK_FILE } from './protocol.js';
import { HEARTBEAT_EVERY_MS, heartbeat } from './heartbeat.js';
import { reloadPolicy } from './reload-policy.js';
import { openEnforcement } from './setup.js';
import { type Mode, ensureStateDir, policyRecord } from './state-dir.js';
import { RecentEvents } from './recent-events.js';

export interface DaemonOptions {
  readonly policy: Policy;
  readonly policyFile: string;
  readonly mode: Mode;
  readonly stateDir: string;
  readonly flushOnExit: boolean;
  readonly log: Logger;
  /** SIGHUP: reads the policy file again, with the command line's overrides; throws ConfigError. */
  readonly reload?: () => { readonly policy: Policy; readonly mode: Mode };
}

/** After this many ban changes (or a reconcile of this many bans), the daemon compacts its memory. */
const BULK_CHANGES = 10_000;

/** On a stop, how long requests already taken may wait for their changes to reach the firewall. */
const STOP_GRACE_MS = 5000;

/** How often an attack nobody can be banned for is repeated in the log. */
const ATTACK_LOG_EVERY_MS = 30_000;

/** Dry-run never changed the firewall: its last line must not say that rules stay or went. */
export function stoppedMessage(mode: Mode, flushed: boolean, active: number): string {
  if (mode === 'dry-run')
    return flushed
      ? 'stopped; the dry-run bans were cleared (--flush-on-exit); the firewall was never changed'
      : `stopped (dry-run: the firewall was never changed); ${active} dry-run ban(s) kept for the next dry-run`;
  return flushed
    ? 'stopped; every floodgate rule removed (--flush-on-exit)'
    : `stopped; ${active} ban(s) stay in place and keep expiring after a restart`;
}

/** How long `run` waits for a manual command holding the state lock (a 200-target ban holds it ~5 s). */
const LOCK_WAIT_MS = 60_000;

/** Longest Unix socket path Linux binds (sun_path is 108 bytes with its NUL). */
const SOCKET_PATH_MAX = 107;

/** What the start line says of dry-run mode. */
const DRY_RUN_NOTE = 'dry-run (nothing will be changed; the exact commands are logged)';

/**
 * Refuses a state directory whose socket path is too long to bind: Node would bind a truncated path,
 * outside the state directory, and then fail.
 */
function checkSocketPath(socketPath: string, stateDir: string): void {
  const bytes = Buffer.byteLength(resolve(socketPath));
  if (bytes > SOCKET_PATH_MAX) {
    throw new UsageError(
      `the state directory ${stateDir} is too long for its control socket: ${resolve(socketPath)} ` +
        `is ${bytes} bytes, and a Unix socket path may have at most ${SOCKET_PATH_MAX}; ` +
        'choose a shorter --state-dir (a symlink with a short name to it will do)',
    );
  }
}

/**
 * Takes the state directory's lock. A manual command holding it (no daemon answers on the socket) is
 * waited for, up to LOCK_WAIT_MS; a running daemon is refused at once.
 */
async function lockStateDir(stateDir: string, socketPath: string, log: Logger): Promise<StateLock> {
  const path = join(stateDir, LOCK_FILE);
  const first = tryLock(path);
  if (first !== null) return first;
  const daemonAnswers = async () => (await sendControl(socketPath, { cmd: 'status' }).catch(() => null)) !== null;
  const anotherDaemon = () =>
    new ConflictError(
      `another floodgate run (pid ${lockOwner(path) ?? '?'}) is using the state directory ${stateDir}; stop it first`,
    );
  if (await daemonAnswers()) throw anotherDaemon();
  log.info(
    { event: 'lock-wait', pid: lockOwner(path), stateDir },
    `the state directory is locked by process ${lockOwner(path) ?? '?'} (a manual ` +
      `floodgate command?): waiting up to ${formatDuration(LOCK_WAIT_MS)} for it`,
  );
  try {
    return await acquireLock(path, LOCK_WAIT_MS, daemonAnswers);
  } catch (error) {
    if (error instanceof ConflictError && error.message === 'retry through the daemon') throw anotherDaemon();
    throw error;
  }
}

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const { mode, stateDir, log } = options;
  let policy = options.policy;
  ensureStateDir(stateDir);
  const socketPath = join(stateDir, CONTROL_SOCKET);
  checkSocketPath(socketPath, stateDir);
  const lock = await lockStateDir(stateDir, socketPath, log);
  let control: ControlServer | undefined;
  // At once: SIGHUP's default action would end the daemon. It asks for a reload before the next scan.
  let reloadWanted = false;
  let wakeForReload: (() => void) | undefined;
  const onHangup = () => {
    reloadWanted = true;
    wakeForReload?.();
  };
  process.on('SIGHUP', onHangup);
  // Opt-in (metrics.listen); bound before the firewall is touched, so that a taken port stops the
  // start cleanly. Its address is fixed until a restart (a reload that changes it is refused).
  let metricsServer: MetricsServer | undefined;
  let untapMetrics: (() => void) | undefined;
  let metrics: FloodgateMetrics | undefined;
  let stopSinks: (() => Promise<void>) | undefined;
  // For the control socket's `events` request (`floodgate top`): what the log says, whatever its level.
  const recent = new RecentEvents();
  const untapRecent = tapEvents(log, (event) => recent.push(event));
  let fleet: RunningFleet | undefined;
  try {
    // The fleet's secrets first: an unreadable file stops the start before the firewall is touched.
    const fleetEngine = policy.fleet && createEngine(policy.fleet, log);
    if (policy.metrics) {
      metrics = new FloodgateMetrics({ rules: policy.rules.map((rule) => rule.name) });
      untapMetrics = tapEvents(log, metrics.onEvent);
      metricsServer = await serveMetrics(metrics, policy.metrics.listen, options.policyFile);
      log.info(
        { event: 'metrics', listen: metricsServer.address },
        `serving Prometheus metrics at http://${metricsServer.address}/metrics`,
      );
    }
    const { enforcer, backend } = await openEnforcement(policy, mode, stateDir, log, { migrate: mode === 'enforce' });
    // One tap on the log feeds the notifications and the ban history: every event is one log call.
    const notifier = new Notifier(policy.notify, { runner: enforcer.runner, log, dryRun: mode === 'dry-run' });
    const history = new HistoryWriter(stateDir, (error) =>
      log.error(
        { event: 'error', during: 'history', message: error.message },
        `could not write the ban history: ${error.message}; bans go on`,
      ),
    );
    const untap = tapEvents(log, (event) => {
      history.take(event);
      notifier.take(event);
    });
    stopSinks = async () => {
      untap();
      history.flush();
      await notifier.stop(STOP_GRACE_MS);
    };
    // Manual commands without --policy use the daemon's policy (same backend, same limits).
    try {
      writeFileAtomic(policyRecord(stateDir), `${resolve(options.policyFile)}\n`);
    } catch (error) {
      // A full disk must not keep floodgate from protecting the host; manual commands then need --policy.
      log.warn(
        { event: 'error', during: 'save', file: policyRecord(stateDir), message: (error as Error).message },
        'could not record the policy for manual commands ' +
          `(${(error as Error).message}); give them --policy until it is recorded`,
      );
    }
    const { store } = enforcer;
    metrics?.attach({
      backend: backend.kind,
      mode,
      activeBans: () => store.size,
      queueDepth: () => enforcer.queue.size,
      oldestQueuedAt: () => enforcer.queue.oldestSince,
    });
    const started = Date.now();
    log.info(
      {
        event: 'start',
        mode,
        backend: backend.kind,
        policy: options.policyFile,
        interval: formatDuration(policy.interval),
        stateDir,
        activeBans: store.size,
      },
      `floodgate ${mode === 'dry-run' ? DRY_RUN_NOTE : 'enforcing'} with ${backend.kind}, ` +
        `scanning every ${formatDuration(policy.interval)}; ${store.size} active ban(s) restored`,
    );

    // Crash recovery: bans the store holds get their rules back, rules nobody explains go.
    enforcer.expire();
    await enforcer.reconcile();
    await enforcer.queue.drain();

    let allowlist = buildAllowlist(policy.allowlist, hostAddresses());
    // Fleet bans: pushed after they are local, pulled through the same gate (allowlist, own addresses, max_active).
    // Stopped in the finally below too: its timers would keep a failed start alive, syncing without the lock.
    if (policy.fleet && fleetEngine)
      fleet = openFleet({
        fleet: policy.fleet,
        engine: fleetEngine,
        enforcer,
        log,
        dryRun: mode === 'dry-run',
        protectedSet: () => allowlist,
        maxActive: () => policy.ban.max_active,
      });

    const runningFleet = fleet;
    control = await serveControl(
      socketPath,
      mode,
      controlHandler({
        enforcer,
        policy: () => policy,
        mode,
        daemon: { pid: process.pid, since: new Date(started).toISOString() },
        events: () => recent.all(),
        ...(runningFleet && { fleet: () => runningFleet.sync.status() }),
      }),
    );

    let stopping = false;
    let answered: Promise<void> = Promise.resolve();
    let wake: (() => void) | undefined;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      // Requests first: none is taken from now on, so none can change the bans after the last save.
      answered = control!.stop();
      log.info(
        { event: 'stop', signal },
        `${signal}: taking no more requests; finishing the ones taken and saving state`,
      );
      wake?.();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    wakeForReload = () => wake?.();

    let previousCounters: { at: number; counters: FloodCounters } | undefined;
    let lastReconcile = Date.now();
    let lastAttackLog = -Infinity;
    let nextHeartbeat = -Infinity;
    let changesAtLastCollect = store.changes;
    let changesLastTick = store.changes;
    let wasQuiet = false;
    const collect = (after: string) => {
      const before = process.memoryUsage();
      collectGarbage();
      const now = process.memoryUsage();
      log.debug(
        {
          event: 'gc',
          after,
          heapUsedBefore: before.heapUsed,
          heapUsed: now.heapUsed,
          heapTotalBefore: before.heapTotal,
          heapTotal: now.heapTotal,
        },
        `memory compacted after a ${after}`,
      );
    };
    // One table for every scan, emptied and filled again: no per-scan allocation of its columns.
    const sockets = new SocketTable();

    while (!stopping) {
      const tickStart = Date.now();
      if (reloadWanted) {
        reloadWanted = false;
        try {
          if (options.reload)
            policy = reloadPolicy({
              current: policy,
              mode,
              file: options.policyFile,
              load: options.reload,
              enforcer,
              log,
              notifier,
            });
          allowlist = buildAllowlist(policy.allowlist, hostAddresses());
        } catch (error) {
          log.error(
            { event: 'error', during: 'reload', err: error },
            `policy reload failed, the previous policy stays in force: ${(error as Error).message}`,
          );
        }
      }
      try {
        const [table, counters] = await Promise.all([readLiveTable('all', undefined, sockets), readKernelCounters()]);
        const now = Date.now();
        const counterRatesNow =
          previousCounters && counterRates(previousCounters.counters, counters, (now - previousCounters.at) / 1000);
        previousCounters = { at: now, counters };
        // Bans waiting in the queue are suppressed too: they are in the store already.
        const verdicts = detect(
          { rows: table.rows, ...(counterRatesNow && { counterRates: counterRatesNow }) },
          policy,
          now,
          {
            allowlist,
            suppressed: store.suppressed(now),
          },
        );
        for (const verdict of verdicts) {
          if (verdict.kind === 'ban') {
            enforcer.ban({ target: parseCidr(verdict.target)!, rule: verdict.rule, count: verdict.count }, now);
          } else if (now - lastAttackLog >= ATTACK_LOG_EVERY_MS) {
            lastAttackLog = now;
            log.warn(
              { event: 'attack', reasons: verdict.reasons, synRecvTotal: verdict.synRecvTotal },
              'SYN FLOOD IN PROGRESS, but no source or network crosses a threshold (spoofed sources?): ' +
                `${verdict.reasons.join('; ')}. Nothing to ban; keep SYN cookies on (net.ipv4.tcp_syncookies=1).`,
            );
          }
        }
        if (now >= nextHeartbeat) {
          nextHeartbeat = now + HEARTBEAT_EVERY_MS;
          const beat = heartbeat(table.rows, verdicts, store.size);
          log.info(beat.fields, beat.msg);
        }
        enforcer.expire(now);
        store.lastScan = { at: now, durationMs: Date.now() - tickStart, sockets: table.rows.length };
        metrics?.scanned({
          at: now,
          durationMs: store.lastScan.durationMs,
          table: table.rows,
          counters,
          attack: verdicts.some((verdict) => verdict.kind !== 'ban'),
        });
        store.touch();
        if (now - lastReconcile >= policy.reconcile_interval) {
          lastReconcile = now;
          allowlist = buildAllowlist(policy.allowlist, hostAddresses());
          await enforcer.reconcile();
          // Listing a large set is a bulk job too: its garbage outlives the young generation.
          if (store.size >= BULK_CHANGES) collect('reconcile');
        }
        // Also retries a save that failed (a full disk): reported by persist, never fatal.
        if (enforcer.queue.size === 0) enforcer.persist();
        // A bulk change (ban --from-file of 100k, an expiry wave, a flush) leaves its garbage in
        // V8's old generation, which a daemon that allocates little keeps for good: collect it once
        // the store and the queue have been quiet for a whole tick, so the change is over.
        const quiet = store.changes === changesLastTick && enforcer.queue.idle;
        if (quiet && wasQuiet && store.changes - changesAtLastCollect >= BULK_CHANGES) {
          changesAtLastCollect = store.changes;
          collect('bulk change');
        }
        wasQuiet = quiet;
        changesLastTick = store.changes;
      } catch (error) {
        // One failed pass (an unreadable table, a firewall error) never stops the loop.
        log.error({ event: 'error', during: 'scan', err: error }, `scan failed: ${(error as Error).message}`);
      }
      const wait = Math.max(0, policy.interval - (Date.now() - tickStart));
      if (!stopping) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, wait);
        });
        wake = undefined;
      }
    }

    // Requests already taken are in the store; give the queue a few seconds to apply their changes,
    // so that their clients hear "banned". What is left is saved before they are told it waits.
    await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())]);
    // Saved before the fleet stops too: its last request may take up to its timeout, and systemd's
    // stop timeout must not cut the save. The outbox is saved with the store: what was not pushed
    // goes at the next start.
    enforcer.persist(0);
    const stoppingFleet = fleet;
    fleet = undefined;
    await stoppingFleet?.stop();
    // Never throws: a full disk is retried by enforcer.stop() below, which says so if it still fails.
    enforcer.persist(0);
    if (options.flushOnExit) await enforcer.flush();
    try {
      await enforcer.stop();
    } catch (error) {
      log.error(
        { event: 'stopped', activeBans: store.size, saved: false, message: (error as Error).message },
        `stopped without saving: ${(error as Error).message}`,
      );
      throw error;
    } finally {
      await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      control = undefined;
    }
    log.info(
      { event: 'stopped', activeBans: store.size, flushed: options.flushOnExit },
      stoppedMessage(mode, options.flushOnExit, store.size),
    );
  } finally {
    process.off('SIGHUP', onHangup);
    await fleet?.stop();
    untapMetrics?.();
    await metricsServer?.stop();
    untapRecent();
    void control?.stop();
    // The history is written at once, under the lock; the last notifications (a final error) may
    // take a few seconds more, which a restart need not wait for.
    const sinksStopped = stopSinks?.();
    lock.release();
    await sinksStopped;
  }
}
