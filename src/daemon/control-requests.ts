// What the daemon does with a request from its control socket: checks every field, refuses a
// command told another mode, and runs it at once; only a flush runs alone (a ban taken during a
// flush could be wiped from the firewall while the store keeps it), so bans and unbans arriving
// meanwhile wait for it. Reads never wait, and each ban or unban waits only for its own changes.
import type { Enforcer } from '../enforce/enforcer.js';
import { UsageError } from '../errors.js';
import type { Policy } from '../policy/schema.js';
import { perform } from './operations.js';
import type { FleetStatus } from '../fleet/fleet-sync.js';
import type { RecentEvent, StatusResult } from './protocol.js';
import { parseRequest } from './request-schema.js';

export interface ControlContext {
  readonly enforcer: Enforcer;
  /** The policy in force now: a SIGHUP reload replaces it (its ttl is a manual ban's default). */
  readonly policy: () => Policy;
  readonly mode: 'dry-run' | 'enforce';
  readonly daemon: NonNullable<StatusResult['daemon']>;
  /** The latest events, oldest first, for the read-only `events` request. */
  readonly events?: () => RecentEvent[];
  /** The fleet sync's state, when the policy has a fleet. */
  readonly fleet?: () => FleetStatus;
}

export function controlHandler(context: ControlContext): (raw: unknown) => Promise<unknown> {
  const { enforcer, mode, daemon } = context;
  let flushing: Promise<void> | undefined;
  const afterFlush = async () => {
    while (flushing !== undefined) await flushing;
  };
  return async (raw) => {
    const request = parseRequest(raw);
    // A manual command told --enforce must not be previewed, nor one told --dry-run enforced.
    if (request.mode !== undefined && request.mode !== mode) {
      throw new UsageError(
        `the running floodgate (pid ${daemon.pid}) is in ${mode} mode, but this command says ` +
          `--${request.mode}: drop the flag, or restart floodgate run in ${request.mode} mode`,
      );
    }
    switch (request.cmd) {
      case 'events':
        return context.events?.() ?? [];
      case 'status':
      case 'list':
        return perform(request, {
          enforcer,
          policy: context.policy(),
          now: Date.now(),
          daemon,
          ...(context.fleet && { fleet: context.fleet() }),
        });
      case 'flush': {
        await afterFlush();
        const job = perform(request, { enforcer, policy: context.policy(), now: Date.now(), daemon });
        const done: Promise<void> = job
          .then(
            () => undefined,
            () => undefined,
          )
          .finally(() => {
            if (flushing === done) flushing = undefined;
          });
        flushing = done;
        return job;
      }
      default:
        await afterFlush();
        return perform(request, { enforcer, policy: context.policy(), now: Date.now(), daemon });
    }
  };
}
