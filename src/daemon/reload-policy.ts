// SIGHUP: read the policy file again. A valid policy takes effect for the next scan (thresholds,
// rules, allowlist, interval, ban settings, reload hook), an invalid one is logged and the old one
// stays. A firewall or mode change is refused as a whole: the firewall's rules and sets were built
// at start, so only a restart (which migrates the bans) can change them.
import type { Enforcer } from '../enforce/enforcer.js';
import { FloodgateError } from '../errors.js';
import { ReloadHook } from '../hooks/reload-hook.js';
import type { Logger } from '../log.js';
import { buildAllowlist, hostAddresses } from '../net/allowlist.js';
import { CidrSet } from '../net/cidr-set.js';
import { parseCidr } from '../net/ip.js';
import { describeDiff, diffPolicy } from '../policy/policy-diff.js';
import type { Policy } from '../policy/schema.js';
import type { Mode } from './state-dir.js';

export interface ReloadContext {
  readonly current: Policy;
  readonly mode: Mode;
  readonly file: string;
  /** Reads and validates the file again, with the command line's overrides (--interval, --enforce). */
  readonly load: () => { readonly policy: Policy; readonly mode: Mode };
  readonly enforcer: Enforcer;
  readonly log: Logger;
  readonly now?: number;
  /** Takes the new `notify:` settings when the reload is applied. */
  readonly notifier?: { configure(settings: Policy['notify']): void };
}

/** The policy in force after the reload: the new one, or `current` when it was refused. */
export function reloadPolicy(context: ReloadContext): Policy {
  const { current, mode, file, enforcer, log } = context;
  let next: { policy: Policy; mode: Mode };
  try {
    next = context.load();
  } catch (error) {
    // A ConfigError holds one "file:line key: …" line per mistake.
    const errors = (error instanceof FloodgateError ? error.message : String((error as Error)?.message ?? error)).split(
      '\n',
    );
    log.error(
      { event: 'reload', applied: false, policy: file, errors },
      `policy reload refused, the previous policy stays in force: ${errors.join('; ')}`,
    );
    return current;
  }
  const diff = diffPolicy(current, next.policy);
  const refusals = diff.restartOnly.map((c) => `${c.key} ${c.from} -> ${c.to}`);
  if (next.mode !== mode) refusals.unshift(`mode ${mode} -> ${next.mode}`);
  // ipset's and nftables' sets are made at start with room for ban.max_active elements.
  const maxActive = diff.settings.find((c) => c.key === 'ban.max_active');
  if (maxActive && current.firewall.backend !== 'iptables')
    refusals.push(
      `ban.max_active ${maxActive.from} -> ${maxActive.to} (the ${current.firewall.backend} sets are sized by it)`,
    );
  // The fleet's engine, secrets and timers are set up at start.
  for (const c of diff.settings)
    if (c.key === 'fleet' || c.key.startsWith('fleet.')) refusals.push(`${c.key} ${c.from} -> ${c.to}`);
  if (refusals.length > 0) {
    log.error(
      { event: 'reload', applied: false, policy: file, needsRestart: refusals },
      `policy reload refused: ${refusals.join(', ')} needs a restart (systemctl restart floodgate, or stop and ` +
        'start floodgate run; bans are kept and moved to the new firewall setup); the previous policy stays in force',
    );
    return current;
  }

  const policy = next.policy;
  const protectedSet = buildAllowlist(policy.allowlist, hostAddresses());
  const sameHook = JSON.stringify(policy.reload) === JSON.stringify(current.reload);
  const reload = sameHook
    ? enforcer.reloadHook
    : policy.reload && new ReloadHook(policy.reload, enforcer.runner, log, mode === 'dry-run');
  enforcer.update({
    protectedSet,
    rate: policy.ban.rate,
    maxActive: policy.ban.max_active,
    killConnections: policy.ban.kill_connections,
    reload,
  });
  enforcer.store.setLimits({ ttl: policy.ban.ttl, maxTtl: policy.ban.max_ttl });
  context.notifier?.configure(policy.notify);

  // An operator adds an address to the allowlist to free it: lift the bans that block it now.
  const freed = new CidrSet();
  for (const entry of diff.allowlistAdded) freed.add(parseCidr(entry)!);
  const lifted: string[] = [];
  if (diff.allowlistAdded.length > 0) {
    for (const ban of [...enforcer.store.values()]) if (freed.overlaps(parseCidr(ban.target)!)) lifted.push(ban.target);
    for (const target of lifted) enforcer.unban(parseCidr(target)!, 0, 'unban', context.now, 'allowlist');
  }
  const what = describeDiff(diff);
  const liftedVerb = mode === 'dry-run' ? 'dry-run: would lift' : 'lifted';
  log.info(
    {
      event: 'reload',
      applied: true,
      policy: file,
      rulesAdded: diff.rulesAdded,
      rulesRemoved: diff.rulesRemoved,
      rulesChanged: diff.rulesChanged,
      allowlistAdded: diff.allowlistAdded,
      allowlistRemoved: diff.allowlistRemoved,
      settings: diff.settings,
      lifted,
    },
    `policy reloaded from ${file}: ${what}` +
      `${lifted.length > 0 ? `; ${liftedVerb} the ban(s) of ${lifted.join(', ')} (now allowlisted)` : ''}`,
  );
  return policy;
}
