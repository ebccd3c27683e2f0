// The single place a backend is chosen from the policy.
import { UsageError } from '../errors.js';
import type { Policy } from '../policy/schema.js';
import type { CommandRunner } from '../system/command-runner.js';
import type { FirewallBackend } from './backend.js';
import { IptablesBackend } from './iptables.js';

export function createBackend(policy: Policy, runner: CommandRunner): FirewallBackend {
  const kind = policy.firewall.backend;
  switch (kind) {
    case 'iptables':
      return new IptablesBackend(runner, { chain: policy.firewall.chain, target: policy.firewall.target });
    case 'ipset':
    case 'nftables':
      throw new UsageError(`firewall.backend ${kind} is not available in this version yet; use iptables`);
    default: {
      const unreachable: never = kind;
      throw new UsageError(`unknown firewall.backend ${String(unreachable)}`);
    }
  }
}
