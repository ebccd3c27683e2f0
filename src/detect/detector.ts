// The detector: (table snapshot, policy, now) -> verdicts. Pure: no clock, no file, no process.
import { CidrSet } from '../net/cidr-set.js';
import { parseCidr, parseIp } from '../net/ip.js';
import type { Policy, Rule } from '../policy/schema.js';
import { type SocketFilter, countSockets } from '../table/count-sockets.js';
import type { FloodCounters } from '../table/kernel-counters.js';
import { STATES, type SocketRow, type SocketState } from '../table/socket-row.js';

export interface Snapshot {
  readonly rows: readonly SocketRow[];
  /** Per-second rates of the kernel's flood counters since the previous snapshot, when known. */
  readonly counterRates?: FloodCounters;
}

export interface BanVerdict {
  readonly kind: 'ban';
  /** An address, or a network in CIDR form for `per: net` rules. */
  readonly target: string;
  readonly rule: string;
  readonly count: number;
  readonly threshold: number;
  readonly at: number;
}

/** A SYN flood the kernel sees but no source explains (spoofed sources): nothing to ban, much to say. */
export interface AttackVerdict {
  readonly kind: 'attack';
  readonly reasons: readonly string[];
  readonly synRecvTotal: number;
  readonly at: number;
}

export type Verdict = BanVerdict | AttackVerdict;

export interface DetectContext {
  /** Never judged: the policy's allowlist plus loopback and the host's own addresses. */
  readonly allowlist: CidrSet;
  /** Not counted again: active bans, queued bans and targets in their unban grace period. */
  readonly suppressed?: CidrSet;
}

const ALL_BUT_LISTEN: ReadonlySet<SocketState> = new Set(STATES.filter((state) => state !== 'LISTEN'));

export function ruleFilter(rule: Rule): SocketFilter {
  return {
    states: rule.states === undefined ? ALL_BUT_LISTEN : new Set(rule.states),
    ...(rule.ports !== undefined && { ports: new Set(rule.ports) }),
    proto: rule.proto,
  };
}

export function detect(snapshot: Snapshot, policy: Policy, now: number, context: DetectContext): Verdict[] {
  const { allowlist, suppressed } = context;
  const skipCache = new Map<string, boolean>();
  const isSuppressed = (remote: string): boolean => {
    let hit = skipCache.get(remote);
    if (hit === undefined) {
      const ip = parseIp(remote);
      hit = ip === null || (suppressed !== undefined && suppressed.coversAddress(ip.family, ip.value));
      skipCache.set(remote, hit);
    }
    return hit;
  };

  const bans: BanVerdict[] = [];
  const flagged = new Set<string>();
  const flaggedNets = new CidrSet();
  for (const rule of policy.rules) {
    const grouping = rule.per === 'net' ? { by: 'net' as const, prefix4: rule.prefix4, prefix6: rule.prefix6 } : { by: 'ip' as const };
    const { groups } = countSockets(snapshot.rows, ruleFilter(rule), grouping, isSuppressed);
    for (const [target, count] of groups) {
      if (count <= rule.threshold || flagged.has(target)) continue;
      const cidr = parseCidr(target)!;
      // A network that holds an allowlisted address is never banned whole; its other sources are
      // still judged one by one by the per-ip rules.
      if (rule.per === 'net' ? allowlist.overlaps(cidr) : allowlist.covers(cidr)) continue;
      flagged.add(target);
      if (rule.per === 'net') flaggedNets.add(cidr);
      bans.push({ kind: 'ban', target, rule: rule.name, count, threshold: rule.threshold, at: now });
    }
  }
  // An address inside a network banned in the same pass needs no rule of its own.
  const verdicts: Verdict[] = flaggedNets.size === 0 ? bans : bans.filter((v) => v.target.includes('/') || !flaggedNets.covers(parseCidr(v.target)!));

  if (verdicts.length === 0) {
    const attack = floodSignal(snapshot, policy, now, isSuppressed);
    if (attack !== null) verdicts.push(attack);
  }
  return verdicts;
}

function floodSignal(snapshot: Snapshot, policy: Policy, now: number, isSuppressed: (remote: string) => boolean): AttackVerdict | null {
  const signal = policy.flood_signal;
  let synRecvTotal = 0;
  // Half-open connections left over from sources banned already are no sign of an unbannable flood.
  for (const row of snapshot.rows) if (row.state === 'SYN_RECV' && !isSuppressed(row.remote)) synRecvTotal++;
  const reasons: string[] = [];
  const rates = snapshot.counterRates;
  if (rates !== undefined) {
    if (rates.SyncookiesSent >= signal.syncookies_per_second) reasons.push(`${Math.round(rates.SyncookiesSent)} SYN cookies/s sent`);
    const drops = rates.ListenDrops + rates.TCPReqQFullDrop;
    if (drops >= signal.drops_per_second) reasons.push(`${Math.round(drops)} SYNs/s dropped by full listen queues`);
  }
  if (synRecvTotal >= signal.syn_recv_total) reasons.push(`${synRecvTotal} half-open connections`);
  return reasons.length === 0 ? null : { kind: 'attack', reasons, synRecvTotal, at: now };
}
