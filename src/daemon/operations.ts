// What each control request does to the bans: the same code whether the daemon serves it over its
// socket or a manual command runs it directly under the state lock.
import { type Ban, banSource } from '../bans/ban-store.js';
import type { FleetStatus } from '../fleet/fleet-sync.js';
import type { Enforcer } from '../enforce/enforcer.js';
import { ConflictError } from '../errors.js';
import { formatCidr } from '../net/ip.js';
import { parseTarget } from '../net/target.js';
import { formatDuration, formatInstant } from '../policy/duration.js';
import type { Policy } from '../policy/schema.js';
import type { BanResult, FlushResult, ListedBan, Request, StatusResult, UnbanResult } from './protocol.js';

export function listedBan(ban: Ban, dryRun: boolean): ListedBan {
  return {
    target: ban.target,
    rule: ban.rule,
    reason: ban.reason ?? null,
    count: ban.count,
    createdAt: new Date(ban.createdAt).toISOString(),
    expiresAt: new Date(ban.expiresAt).toISOString(),
    dryRun,
    source: banSource(ban),
  };
}

export interface OperationContext {
  readonly enforcer: Enforcer;
  readonly policy: Policy;
  readonly daemon: StatusResult['daemon'];
  readonly now: number;
  readonly fleet?: FleetStatus;
}

/** What a daemon tells a command whose change it could not save (a manual command fails instead). */
function unsaved(context: OperationContext): string | undefined {
  const failure = context.enforcer.store.saveFailure;
  if (context.daemon === null || failure === undefined) return undefined;
  return (
    'the running floodgate applied this, but cannot save its ban store since ' +
    `${new Date(failure.since).toISOString()} (${failure.message}); it ` +
    'keeps trying, and the change is lost if it stops before a save succeeds'
  );
}

/**
 * Waits for these targets' changes only (not for a ban list queued by someone else); if the daemon
 * stopped first, says so: the bans are in the saved store, and reconcile applies them at the next start.
 */
async function applied(enforcer: Enforcer, results: readonly { target: string }[]): Promise<void> {
  const unapplied = await enforcer.queue.whenApplied(results.map((r) => r.target));
  if (unapplied > 0) {
    throw new ConflictError(
      `floodgate stopped before ${unapplied} of these ${results.length} change(s) ` +
        'reached the firewall: they are saved, and applied when floodgate starts again',
    );
  }
}

export async function perform(request: Request, context: OperationContext): Promise<unknown> {
  const { enforcer, policy, now } = context;
  const dryRun = enforcer.backend.dryRun;
  switch (request.cmd) {
    case 'ban': {
      // Validated again here: the socket is a boundary too.
      const targets = request.targets.map((t) => parseTarget(t, request.force));
      const { reason, ttl, force } = request;
      const outcomes = enforcer.banList(
        targets.map((target) => ({ target, rule: 'manual', count: 0, reason: reason || undefined, ttl, force })),
        now,
      );
      const results: BanResult[] = outcomes.map((outcome, i) => {
        const target = targets[i]!;
        return outcome.status === 'refused'
          ? { target: formatCidr(target), status: 'refused', reason: outcome.reason }
          : { target: outcome.ban.target, status: outcome.status, expiresAt: formatInstant(outcome.ban.expiresAt) };
      });
      await applied(enforcer, results);
      const warning = unsaved(context);
      return warning === undefined ? results : results.map((r) => ({ ...r, unsaved: warning }));
    }
    case 'unban': {
      const targets = request.targets.map((t) => parseTarget(t, true));
      const results: UnbanResult[] = targets.map((target) => {
        const ban = enforcer.unban(target, request.grace ?? policy.ban.ttl, 'unban', now);
        return { target: formatCidr(target), status: ban === undefined ? 'not-banned' : 'lifted' };
      });
      await applied(enforcer, results);
      const warning = unsaved(context);
      return warning === undefined ? results : results.map((r) => ({ ...r, unsaved: warning }));
    }
    // Kept in a running daemon's memory only (control-requests.ts answers it there): none without one.
    case 'events':
      return [];
    case 'list':
      return enforcer.store.all().map((ban) => listedBan(ban, dryRun));
    case 'flush': {
      const cleared = await enforcer.flush();
      // A running daemon keeps banning: put back the empty sets or table it bans into.
      if (context.daemon !== null) await enforcer.backend.repair?.();
      const warning = unsaved(context);
      const result: FlushResult = warning === undefined ? { cleared } : { cleared, unsaved: warning };
      return result;
    }
    case 'status': {
      const last = enforcer.store.lastScan;
      const memory = process.memoryUsage();
      const status: StatusResult = {
        // The daemon answers with its own memory: is it holding what it should?
        daemon: context.daemon && {
          ...context.daemon,
          memory: {
            rss: memory.rss,
            heapUsed: memory.heapUsed,
            heapTotal: memory.heapTotal,
            external: memory.external,
          },
        },
        mode: dryRun ? 'dry-run' : 'enforce',
        backend: enforcer.backend.kind,
        interval: formatDuration(policy.interval),
        active: enforcer.store.size,
        refused: enforcer.store.refused,
        queued: enforcer.queue.size,
        lastScan: last
          ? { at: new Date(last.at).toISOString(), durationMs: last.durationMs, sockets: last.sockets }
          : null,
        ...(context.fleet && { fleet: context.fleet }),
        ...(enforcer.store.saveFailure && {
          unsaved: {
            since: new Date(enforcer.store.saveFailure.since).toISOString(),
            message: enforcer.store.saveFailure.message,
          },
        }),
      };
      return status;
    }
  }
}
