// `floodgate run`: every interval, table -> detector -> queue -> firewall; expiry, periodic
// reconcile, the control socket, and a clean stop on SIGTERM/SIGINT.
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../bans/state-file.js';
import { tryLock, lockOwner, type StateLock } from '../bans/state-lock.js';
import { detect } from '../detect/detector.js';
import { ConflictError } from '../errors.js';
import type { Logger } from '../log.js';
import { buildAllowlist, hostAddresses } from '../net/allowlist.js';
import { parseCidr } from '../net/ip.js';
import { formatDuration } from '../policy/duration.js';
import type { Policy } from '../policy/schema.js';
import { type FloodCounters, counterRates } from '../table/kernel-counters.js';
import { readKernelCounters, readLiveTable } from '../table/live-table.js';
import { SocketTable } from '../table/socket-table.js';
import { collectGarbage } from '../system/collect-garbage.js';
import { controlHandler } from './control-requests.js';
import { type ControlServer, serveControl } from './control-socket.js';
import { CONTROL_SOCKET, LOCK_FILE } from './protocol.js';
import { openEnforcement } from './setup.js';
import { type Mode, ensureStateDir, policyRecord } from './state-dir.js';

export interface DaemonOptions {
  readonly policy: Policy;
  readonly policyFile: string;
  readonly mode: Mode;
  readonly stateDir: string;
  readonly flushOnExit: boolean;
  readonly log: Logger;
}

/** After this many ban changes (or a reconcile of this many bans), the daemon compacts its memory. */
const BULK_CHANGES = 10_000;

/** On a stop, how long requests already taken may wait for their changes to reach the firewall. */
const STOP_GRACE_MS = 5000;

/** How often an attack nobody can be banned for is repeated in the log. */
const ATTACK_LOG_EVERY_MS = 30_000;

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const { policy, mode, stateDir, log } = options;
  ensureStateDir(stateDir);
  const lock: StateLock | null = tryLock(join(stateDir, LOCK_FILE));
  if (lock === null) {
    throw new ConflictError(`another floodgate (pid ${lockOwner(join(stateDir, LOCK_FILE)) ?? '?'}) is using the state directory ${stateDir}`);
  }
  let control: ControlServer | undefined;
  try {
    const { enforcer, backend } = await openEnforcement(policy, mode, stateDir, log, { migrate: mode === 'enforce' });
    // Manual commands without --policy use the daemon's policy (same backend, same limits).
    writeFileAtomic(policyRecord(stateDir), `${resolve(options.policyFile)}\n`);
    const { store } = enforcer;
    const started = Date.now();
    log.info(
      { event: 'start', mode, backend: backend.kind, policy: options.policyFile, interval: formatDuration(policy.interval), stateDir, activeBans: store.size },
      `floodgate ${mode === 'dry-run' ? 'dry-run (nothing will be changed; the exact commands are logged)' : 'enforcing'} with ${backend.kind}, scanning every ${formatDuration(policy.interval)}; ${store.size} active ban(s) restored`,
    );

    // Crash recovery: bans the store holds get their rules back, rules nobody explains go.
    enforcer.expire();
    await enforcer.reconcile();
    await enforcer.queue.drain();

    control = await serveControl(join(stateDir, CONTROL_SOCKET), mode, controlHandler({ enforcer, policy, mode, daemon: { pid: process.pid, since: new Date(started).toISOString() } }));

    let stopping = false;
    let answered: Promise<void> = Promise.resolve();
    let wake: (() => void) | undefined;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      // Requests first: none is taken from now on, so none can change the bans after the last save.
      answered = control!.stop();
      log.info({ event: 'stop', signal }, `${signal}: taking no more requests; finishing the ones taken and saving state`);
      wake?.();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));

    let allowlist = buildAllowlist(policy.allowlist, hostAddresses());
    let previousCounters: { at: number; counters: FloodCounters } | undefined;
    let lastReconcile = Date.now();
    let lastAttackLog = -Infinity;
    let changesAtLastCollect = store.changes;
    let changesLastTick = store.changes;
    let wasQuiet = false;
    const collect = (after: string) => {
      const before = process.memoryUsage();
      collectGarbage();
      const now = process.memoryUsage();
      log.debug({ event: 'gc', after, heapUsedBefore: before.heapUsed, heapUsed: now.heapUsed, heapTotalBefore: before.heapTotal, heapTotal: now.heapTotal }, `memory compacted after a ${after}`);
    };
    // One table for every scan, emptied and filled again: no per-scan allocation of its columns.
    const sockets = new SocketTable();

    while (!stopping) {
      const tickStart = Date.now();
      try {
        const [table, counters] = await Promise.all([readLiveTable('all', undefined, sockets), readKernelCounters()]);
        const now = Date.now();
        const counterRatesNow = previousCounters && counterRates(previousCounters.counters, counters, (now - previousCounters.at) / 1000);
        previousCounters = { at: now, counters };
        // Bans waiting in the queue are suppressed too: they are in the store already.
        const verdicts = detect({ rows: table.rows, ...(counterRatesNow && { counterRates: counterRatesNow }) }, policy, now, {
          allowlist,
          suppressed: store.suppressed(now),
        });
        for (const verdict of verdicts) {
          if (verdict.kind === 'ban') {
            enforcer.ban({ target: parseCidr(verdict.target)!, rule: verdict.rule, count: verdict.count }, now);
          } else if (now - lastAttackLog >= ATTACK_LOG_EVERY_MS) {
            lastAttackLog = now;
            log.warn(
              { event: 'attack', reasons: verdict.reasons, synRecvTotal: verdict.synRecvTotal },
              `SYN FLOOD IN PROGRESS, but no source or network crosses a threshold (spoofed sources?): ${verdict.reasons.join('; ')}. Nothing to ban; keep SYN cookies on (net.ipv4.tcp_syncookies=1).`,
            );
          }
        }
        enforcer.expire(now);
        store.lastScan = { at: now, durationMs: Date.now() - tickStart, sockets: table.rows.length };
        store.touch();
        if (now - lastReconcile >= policy.reconcile_interval) {
          lastReconcile = now;
          allowlist = buildAllowlist(policy.allowlist, hostAddresses());
          await enforcer.reconcile();
          // Listing a large set is a bulk job too: its garbage outlives the young generation.
          if (store.size >= BULK_CHANGES) collect('reconcile');
        }
        if (enforcer.queue.size === 0) store.saveIfChanged();
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
    store.saveIfChanged(0);
    if (options.flushOnExit) await enforcer.flush();
    await enforcer.stop();
    await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    control = undefined;
    log.info({ event: 'stopped', activeBans: store.size, flushed: options.flushOnExit }, options.flushOnExit ? 'stopped; every floodgate rule removed (--flush-on-exit)' : `stopped; ${store.size} ban(s) stay in place and keep expiring after a restart`);
  } finally {
    void control?.stop();
    lock.release();
  }
}
