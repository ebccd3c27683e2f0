// What the daemon would do with one captured table at one tick, nothing banned yet: the bans it
// would make and the sources it would spare, and why. For `scan --input … --policy FILE`.
import { buildAllowlist } from '../net/allowlist.js';
import { CidrSet } from '../net/cidr-set.js';
import { parseCidr } from '../net/ip.js';
import { formatDuration } from '../policy/duration.js';
import type { Policy } from '../policy/schema.js';
import type { SocketTable } from '../table/socket-table.js';
import { type AttackVerdict, type SparedTarget, detect } from './detector.js';

export interface WhatIfBan {
  /** An address (no /32 or /128), or a network as CIDR. */
  readonly target: string;
  readonly rule: string;
  readonly count: number;
  /** The first ban's ttl: a capture has no ban history, so no repeat-offender doubling. */
  readonly ttl: string;
}

export interface WhatIfSpared {
  readonly target: string;
  /** allowlist | min_sources | under threshold | max_active (ban.max_active reached). */
  readonly reason: SparedTarget['reason'] | 'under threshold' | 'max_active';
}

export interface WhatIf {
  readonly bans: WhatIfBan[];
  readonly spared: WhatIfSpared[];
  /** A flood nobody can be banned for (from the half-open total: a capture has no kernel counters). */
  readonly attack?: AttackVerdict;
}

/**
 * `candidates` are further targets to account for (scan's top sources): each one no ban covers is
 * spared because of the allowlist or for being under every threshold. The host's own addresses
 * are not known for a capture; the allowlist is the policy's plus loopback and link-local.
 */
export function whatIf(rows: SocketTable, policy: Policy, candidates: readonly string[] = []): WhatIf {
  const allowlist = buildAllowlist(policy.allowlist, []);
  const sparedByRules: SparedTarget[] = [];
  const verdicts = detect({ rows }, policy, 0, { allowlist, spared: sparedByRules });
  const ttl = formatDuration(policy.ban.ttl);
  const bans: WhatIfBan[] = [];
  const spared: WhatIfSpared[] = [];
  const seen = new Set<string>();
  const spare = (target: string, reason: WhatIfSpared['reason']): void => {
    if (seen.has(target)) return;
    seen.add(target);
    spared.push({ target, reason });
  };
  let attack: AttackVerdict | undefined;
  for (const verdict of verdicts) {
    if (verdict.kind === 'attack') attack = verdict;
    else if (bans.length >= policy.ban.max_active) spare(verdict.target, 'max_active');
    else bans.push({ target: verdict.target, rule: verdict.rule, count: verdict.count, ttl });
  }
  const banned = new CidrSet();
  for (const ban of bans) {
    banned.add(parseCidr(ban.target)!);
    seen.add(ban.target);
  }
  for (const { target, reason } of sparedByRules) if (!banned.covers(parseCidr(target)!)) spare(target, reason);
  for (const target of candidates) {
    const cidr = parseCidr(target);
    if (cidr === null || seen.has(target) || banned.covers(cidr)) continue;
    spare(target, allowlist.overlaps(cidr) ? 'allowlist' : 'under threshold');
  }
  return { bans, spared, ...(attack && { attack }) };
}
