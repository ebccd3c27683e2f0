// The single place a backend is chosen from the policy, and the clean-up of the others after a
// backend change, so that no rule is left behind in the firewall floodgate no longer uses.
import { ConfigError } from '../errors.js';
import type { Policy } from '../policy/schema.js';
import type { BackendKind } from '../policy/schema.js';
import { BACKENDS } from '../policy/schema.js';
import type { CommandRunner } from '../system/command-runner.js';
import type { FirewallBackend } from './backend.js';
import { DEFAULT_INSTANCE, type FirewallInstance } from './instance.js';
import { IptablesBackend } from './iptables.js';
import { IpsetBackend } from './ipset.js';
import { NftablesBackend } from './nftables.js';

export function createBackend(
  policy: Policy,
  runner: CommandRunner,
  instance: FirewallInstance = DEFAULT_INSTANCE,
  kind: BackendKind = policy.firewall.backend,
): FirewallBackend {
  const { chain, target, table } = policy.firewall;
  switch (kind) {
    case 'iptables':
      if (table === 'raw')
        throw new ConfigError(
          'firewall.table: raw needs firewall.backend ipset or nftables; ' +
            'the iptables backend keeps one rule per target in the filter table',
        );
      return new IptablesBackend(runner, { chain, target, instance });
    case 'ipset':
      return new IpsetBackend(runner, { chain, table, target, maxElements: policy.ban.max_active, instance });
    case 'nftables':
      return new NftablesBackend(runner, {
        hook: table === 'raw' ? 'prerouting' : 'input',
        target,
        maxElements: policy.ban.max_active,
        instance,
      });
    default: {
      const unreachable: never = kind;
      throw new Error(`unknown firewall backend ${String(unreachable)}`);
    }
  }
}

/**
 * Removes what the other backends own for this instance (after `firewall.backend` changed): the
 * active bans are then re-applied through the current backend by reconcile, so nothing is lost and
 * nothing is left. Another instance's rules, sets and tables are never looked at. A backend whose
 * tool is not installed owns nothing.
 */
export async function removeOtherBackends(
  policy: Policy,
  runner: CommandRunner,
  instance: FirewallInstance = DEFAULT_INSTANCE,
): Promise<BackendKind[]> {
  const removed: BackendKind[] = [];
  for (const kind of BACKENDS) {
    if (kind === policy.firewall.backend) continue;
    const other = createBackend(policy, runner, instance, kind);
    try {
      const owned = await other.list();
      if (owned.length === 0 && !(await hasLeftovers(kind, runner, instance))) continue;
      await other.flush();
      removed.push(kind);
    } catch {
      // The tool is missing or cannot run here: it owns nothing floodgate could have made.
    }
  }
  return removed;
}

async function hasLeftovers(kind: BackendKind, runner: CommandRunner, instance: FirewallInstance): Promise<boolean> {
  // Whole names only: `floodgate4` is not `floodgate-<id>-4`'s, nor the other way round.
  if (kind === 'ipset')
    return (await runner.run(['ipset', 'list', '-n'], { reject: false })).stdout
      .split('\n')
      .some((n) => n === instance.sets[4] || n === instance.sets[6]);
  if (kind === 'nftables')
    return (await runner.run(['nft', 'list', 'table', 'inet', instance.table], { reject: false })).exitCode === 0;
  return false;
}
