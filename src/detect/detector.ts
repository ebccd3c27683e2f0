// The detector: (table snapshot, policy, now) -> verdicts. Pure: no clock, no file, no process.
import type { CidrSet } from '../net/cidr-set.js';
import { parseCidr } from '../net/ip.js';
import type { Policy, Rule } from '../policy/schema.js';
import { type SocketFilter, countSockets } from '../table/count-sockets.js';
import type { FloodCounters } from '../table/kernel-counters.js';
import { STATES, type SocketState } from '../table/socket-row.js';
import { type SocketTable, stateIndex } from '../table/socket-table.js';

export interface Snapshot {
  readonly rows: SocketTable;
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

/** A target over a rule's threshold that gets no ban, and why: for `scan --policy`. */
export interface SparedTarget {
  readonly target: string;
  readonly rule: string;
  readonly count: number;
  /** allowlist: it is (or, for a network, holds) an allowlisted address; min_sources: too few sources. */
  readonly reason: 'allowlist' | 'min_sources';
}

export interface DetectContext {
  /** Never judged: the policy's allowlist plus loopback and the host's own addresses. */
  readonly allowlist: CidrSet;
  /** Not counted again: active bans, queued bans and targets in their unban grace period. */
  readonly suppressed?: CidrSet;
  /**
   * When given, every target spared despite crossing a threshold
   * is appended to it (costs a second count per per-net rule).
   */
  readonly spared?: SparedTarget[];
}

const ALL_BUT_LISTEN: ReadonlySet<SocketState> = new Set(STATES.filter((state) => state !== 'LISTEN'));

export function ruleFilter(rule: Rule): SocketFilter {
  return {
    states: rule.states === undefined ? ALL_BUT_LISTEN : new Set(rule.states),
    ...(rule.ports !== undefined && { ports: new Set(rule.ports) }),
    proto: rule.proto,
  };
}

/**
 * Per-ip rules are judged first, whatever their place in the policy: a source one of them flags
 * (more sockets than its threshold, whether it is then banned or allowlisted) is dealt with on its
 * own, so a per-net rule counts only the sockets of the other sources of its network, and needs
 * `min_sources` of them. Without this, one heavy source also banned its whole /24 and every
 * neighbour in it. Sources already banned (suppressed) are counted by no rule at all.
 */
export function detect(snapshot: Snapshot, policy: Policy, now: number, context: DetectContext): Verdict[] {
  const { allowlist } = context;
  const table = snapshot.rows;
  const skip = suppressedSources(table, context.suppressed);

  const found: BanVerdict[][] = policy.rules.map(() => []);
  const flagged = new Set<string>();
  // Per address id: 1 for a suppressed source or one a per-ip rule flagged in this pass.
  let judged: Uint8Array | undefined;
  const judge = (rule: Rule, index: number): void => {
    if (rule.per === 'ip') judged ??= skip === undefined ? new Uint8Array(table.addresses.size) : skip.slice();
    const options =
      rule.per === 'net'
        ? { ...(judged && { skip: judged }), above: rule.threshold, minSources: rule.min_sources }
        : { ...(skip && { skip }), above: rule.threshold, mark: judged };
    const grouping =
      rule.per === 'net' ? { by: 'net' as const, prefix4: rule.prefix4, prefix6: rule.prefix6 } : { by: 'ip' as const };
    const { groups } = countSockets(table, ruleFilter(rule), grouping, options);
    const { spared } = context;
    if (spared !== undefined && rule.per === 'net' && rule.min_sources > 1) {
      for (const [target, count] of countSockets(table, ruleFilter(rule), grouping, { ...options, minSources: 1 })
        .groups) {
        if (!groups.has(target) && !allowlist.overlaps(parseCidr(target)!))
          spared.push({ target, rule: rule.name, count, reason: 'min_sources' });
      }
    }
    for (const [target, count] of groups) {
      if (flagged.has(target)) continue;
      const cidr = parseCidr(target)!;
      // A network that holds an allowlisted address is never banned whole; its other sources are
      // still judged one by one by the per-ip rules.
      if (rule.per === 'net' ? allowlist.overlaps(cidr) : allowlist.covers(cidr)) {
        spared?.push({ target, rule: rule.name, count, reason: 'allowlist' });
        continue;
      }
      flagged.add(target);
      found[index]!.push({ kind: 'ban', target, rule: rule.name, count, threshold: rule.threshold, at: now });
    }
  };
  for (const [index, rule] of policy.rules.entries()) if (rule.per === 'ip') judge(rule, index);
  judged ??= skip;
  for (const [index, rule] of policy.rules.entries()) if (rule.per === 'net') judge(rule, index);
  // In the policy's order. A flagged source inside a network banned for its other sources keeps its
  // own ban: it was judged on its own count, and outlives the network's ban if that one is lifted.
  const verdicts: Verdict[] = found.flat();

  if (verdicts.length === 0) {
    const attack = floodSignal(snapshot, policy, now, skip);
    if (attack !== null) verdicts.push(attack);
  }
  return verdicts;
}

/** Per address id of the table, 1 for a source that is suppressed; undefined when none is. */
function suppressedSources(table: SocketTable, suppressed: CidrSet | undefined): Uint8Array | undefined {
  if (suppressed === undefined || suppressed.size === 0) return undefined;
  const book = table.addresses;
  const mask = new Uint8Array(book.size);
  for (let id = 1; id < book.size; id++) {
    const hit =
      book.family(id) === 4 ? suppressed.coversIpv4(book.ipv4(id)) : suppressed.coversAddress(6, book.ipv6(id));
    if (hit) mask[id] = 1;
  }
  return mask;
}

const SYN_RECV = stateIndex('SYN_RECV');

function floodSignal(
  snapshot: Snapshot,
  policy: Policy,
  now: number,
  skip: Uint8Array | undefined,
): AttackVerdict | null {
  const signal = policy.flood_signal;
  const { states, remotes, length } = snapshot.rows;
  let synRecvTotal = 0;
  // Half-open connections left over from sources banned already are no sign of an unbannable flood.
  for (let i = 0; i < length; i++)
    if (states[i] === SYN_RECV && (skip === undefined || skip[remotes[i]!] !== 1)) synRecvTotal++;
  const reasons: string[] = [];
  const rates = snapshot.counterRates;
  if (rates !== undefined) {
    if (rates.SyncookiesSent >= signal.syncookies_per_second)
      reasons.push(`${Math.round(rates.SyncookiesSent)} SYN cookies/s sent`);
    const drops = rates.ListenDrops + rates.TCPReqQFullDrop;
    if (drops >= signal.drops_per_second) reasons.push(`${Math.round(drops)} SYNs/s dropped by full listen queues`);
  }
  if (synRecvTotal >= signal.syn_recv_total) reasons.push(`${synRecvTotal} half-open connections`);
  return reasons.length === 0 ? null : { kind: 'attack', reasons, synRecvTotal, at: now };
}
