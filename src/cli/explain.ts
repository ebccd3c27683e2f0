// `floodgate explain TARGET [--json]`: everything floodgate knows about one address or network, in one
// place: its ban now (rule, count, when, until, the firewall rule), its past bans and unbans (the ban
// history), the allowlist entry that spares it, an unban grace period, and what the live connection
// table shows for it against each rule's threshold. With a running daemon the ban comes from the
// daemon (its control socket); the grace period and the history are read from the state directory's
// files, which the daemon keeps up to date within a scan interval. Without one, all comes from the files.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readHistory, type HistoryEntry } from '../bans/ban-history.js';
import { BanStore } from '../bans/ban-store.js';
import { sendControl } from '../daemon/control-socket.js';
import { peekStateDirInstance } from '../daemon/instance-id.js';
import { CONTROL_SOCKET, type ListedBan, type StatusResult } from '../daemon/protocol.js';
import { defaultStateDir, stateFile } from '../daemon/state-dir.js';
import { ruleFilter } from '../detect/detector.js';
import { quoteInput, UsageError } from '../errors.js';
import { createBackend } from '../firewall/create-backend.js';
import { DEFAULT_INSTANCE } from '../firewall/instance.js';
import { hostAddresses } from '../net/allowlist.js';
import { type Cidr, cidrContains, cidrsOverlap, formatCidr, parseCidr } from '../net/ip.js';
import type { Policy } from '../policy/schema.js';
import type { CommandRunner } from '../system/command-runner.js';
import { shellCommand } from '../system/shell-quote.js';
import { countSockets } from '../table/count-sockets.js';
import { readLiveTable } from '../table/live-table.js';
import { type CommonOptions, loadCommandPolicy, readBans } from './act.js';
import { printable } from './list.js';
import { describePolicy } from './policy-lookup.js';

/** The last history entries shown: the file keeps up to a few thousand of every target's. */
export const HISTORY_SHOWN = 50;

export interface RuleCount {
  readonly rule: string;
  readonly per: 'ip' | 'net';
  /**
   * The address or network the rule counts the target under (the
   * largest, for a network target); null when none has a socket.
   */
  readonly key: string | null;
  readonly count: number;
  readonly threshold: number;
  /** More sockets than the threshold: the detector flags it (unless allowlisted, banned or in grace). */
  readonly over: boolean;
}

export interface Explanation {
  readonly target: string;
  readonly stateDir: string;
  readonly daemon: { readonly pid: number; readonly since: string } | null;
  readonly banned: boolean;
  /** The active ban of the target, or of a network that holds it, as one entry of `list --json`. */
  readonly ban: ListedBan | null;
  /** The firewall rule of that ban, as the command that adds it; `applied` false for a dry-run ban. */
  readonly firewall: { readonly applied: boolean; readonly command: string } | null;
  readonly allowlisted: {
    readonly entry: string;
    readonly source: 'policy' | 'loopback' | 'host';
    readonly covers: boolean;
  } | null;
  readonly grace: { readonly until: string } | null;
  /** Past bans, unbans and expiries of the target (and of networks overlapping it), oldest first. */
  readonly history: readonly HistoryEntry[];
  readonly counts: readonly RuleCount[];
  readonly policy: { readonly file: string | null; readonly source: string };
}

const NO_RUNNER: CommandRunner = {
  run: () => Promise.reject(new Error('explain runs no firewall command')),
};

function parseExplainTarget(text: string): Cidr {
  const cidr = parseCidr(text.trim());
  if (cidr === null)
    throw new UsageError(
      `expected an IPv4 or IPv6 address or a network like 192.0.2.7 or 198.51.100.0/24, got ${quoteInput(text)}`,
    );
  return cidr;
}

const LOOPBACK = ['127.0.0.0/8', '::1', 'fe80::/10'];

/** The allowlist entry that spares the target: the policy's first, then loopback and the host's own. */
export function allowlistEntry(
  target: Cidr,
  policy: Policy,
  ownAddresses: readonly string[],
): Explanation['allowlisted'] {
  const sources: [readonly string[], 'policy' | 'loopback' | 'host'][] = [
    [policy.allowlist, 'policy'],
    [LOOPBACK, 'loopback'],
    [ownAddresses, 'host'],
  ];
  let overlapping: Explanation['allowlisted'] = null;
  for (const [entries, source] of sources) {
    for (const entry of entries) {
      const cidr = parseCidr(entry);
      if (cidr === null || !cidrsOverlap(cidr, target)) continue;
      if (cidrContains(cidr, target)) return { entry: formatCidr(cidr), source, covers: true };
      // A network holding an allowlisted address is never banned whole, but its other sources are.
      overlapping ??= { entry: formatCidr(cidr), source, covers: false };
    }
  }
  return overlapping;
}

/** Each rule's count for the target in `table`: what the detector compares with the threshold. */
export function ruleCounts(target: Cidr, policy: Policy, table: Parameters<typeof countSockets>[0]): RuleCount[] {
  return policy.rules.map((rule) => {
    const grouping =
      rule.per === 'net' ? { by: 'net' as const, prefix4: rule.prefix4, prefix6: rule.prefix6 } : { by: 'ip' as const };
    let key: string | null = null;
    let count = 0;
    for (const [group, n] of countSockets(table, ruleFilter(rule), grouping).groups) {
      const cidr = parseCidr(group);
      if (cidr !== null && cidrsOverlap(cidr, target) && n > count) {
        key = group;
        count = n;
      }
    }
    return { rule: rule.name, per: rule.per, key, count, threshold: rule.threshold, over: count > rule.threshold };
  });
}

/** The grace period of the target in either store, if it has one that has not ended. */
function readGrace(stateDir: string, target: string, policy: Policy, now: number): number | undefined {
  let until: number | undefined;
  for (const mode of ['enforce', 'dry-run'] as const) {
    const file = stateFile(stateDir, mode);
    if (!existsSync(file)) continue;
    const found = BanStore.load(file, { ttl: policy.ban.ttl, maxTtl: policy.ban.max_ttl }).graceUntil(target);
    if (found !== undefined && found > now && (until === undefined || found > until)) until = found;
  }
  return until;
}

export async function explain(targetText: string, options: CommonOptions): Promise<Explanation> {
  const target = parseExplainTarget(targetText);
  const key = formatCidr(target);
  const stateDir = options.stateDir ?? defaultStateDir();
  const socket = join(stateDir, CONTROL_SOCKET);
  const { policy, file, source } = await loadCommandPolicy(options, stateDir);
  const now = Date.now();

  const listed = await sendControl(socket, { cmd: 'list' });
  let daemon: Explanation['daemon'] = null;
  let bans: ListedBan[];
  if (listed?.ok) {
    bans = listed.result as ListedBan[];
    const status = await sendControl(socket, { cmd: 'status' });
    const answered = status?.ok ? (status.result as StatusResult).daemon : null;
    daemon = answered ? { pid: answered.pid, since: answered.since } : null;
  } else {
    bans = existsSync(stateDir) ? await readBans(stateDir, policy.ban.ttl, policy.ban.max_ttl) : [];
  }
  // The target's own ban first, else the narrowest network ban that holds it.
  let ban: ListedBan | null = null;
  let banPrefix = -1;
  for (const candidate of bans) {
    const cidr = parseCidr(candidate.target);
    if (cidr === null || !cidrContains(cidr, target)) continue;
    if (cidr.prefix > banPrefix) {
      ban = candidate;
      banPrefix = cidr.prefix;
    }
  }
  let firewall: Explanation['firewall'] = null;
  if (ban !== null) {
    const backend = createBackend(policy, NO_RUNNER, peekStateDirInstance(stateDir) ?? DEFAULT_INSTANCE);
    firewall = {
      applied: !ban.dryRun,
      command: shellCommand(
        backend.command({ op: 'add', target: parseCidr(ban.target)!, expiresAt: Date.parse(ban.expiresAt) }),
      ),
    };
  }

  const graceUntil = existsSync(stateDir) ? readGrace(stateDir, key, policy, now) : undefined;
  const history = existsSync(stateDir)
    ? readHistory(stateDir)
        .filter((entry) => {
          const cidr = parseCidr(entry.target);
          return cidr !== null && cidrsOverlap(cidr, target);
        })
        .slice(-HISTORY_SHOWN)
    : [];
  const { rows } = await readLiveTable('all');
  return {
    target: key,
    stateDir,
    daemon,
    banned: ban !== null,
    ban,
    firewall,
    allowlisted: allowlistEntry(target, policy, hostAddresses()),
    grace: graceUntil === undefined ? null : { until: new Date(graceUntil).toISOString() },
    history,
    counts: ruleCounts(target, policy, rows),
    policy: { file: file ?? null, source },
  };
}

/** Where an allowlist entry comes from, as `explain` says it. */
const ALLOWLIST_SOURCES = {
  policy: 'the policy’s allowlist',
  loopback: 'loopback, always',
  host: 'an address of this host, always',
} as const;
const PARTLY_ALLOWLISTED = ': the network is never banned whole; its other sources are judged one by one';

/** The text `explain` prints, one string per line. */
export function explanationLines(x: Explanation): string[] {
  const lines = [
    `${x.target}  (state directory ${x.stateDir}; ` +
      `${x.daemon ? `daemon running, pid ${x.daemon.pid}` : 'no daemon running'})`,
  ];
  if (x.ban) {
    const b = x.ban;
    const whose = b.target === x.target ? '' : ` (the ban of ${b.target}, which holds it)`;
    lines.push(
      `banned:       yes${whose}: rule ${printable(b.rule)}${b.count ? `, ${b.count} sockets at the time` : ''}, ` +
        `since ${b.createdAt}, until ${b.expiresAt}${b.reason ? `, reason: ${printable(b.reason)}` : ''}`,
    );
    lines.push(
      x.firewall!.applied
        ? `firewall:     ${x.firewall!.command}`
        : `firewall:     none: a dry-run ban (it would be: ${x.firewall!.command})`,
    );
  } else {
    lines.push('banned:       no');
  }
  lines.push(
    x.allowlisted === null
      ? 'allowlisted:  no'
      : `allowlisted:  ${x.allowlisted.covers ? 'yes' : 'partly'}, by ${x.allowlisted.entry} ` +
          `(${ALLOWLIST_SOURCES[x.allowlisted.source]})` +
          `${x.allowlisted.covers ? '' : PARTLY_ALLOWLISTED}`,
  );
  lines.push(
    x.grace === null
      ? 'grace:        no'
      : `grace:        until ${x.grace.until} (unbanned by hand: the detector leaves it alone until then)`,
  );
  if (x.history.length === 0) {
    lines.push('history:      no ban or unban recorded');
  } else {
    lines.push(`history:      ${x.history.length} recorded (oldest first):`);
    for (const e of x.history) {
      const details = [
        e.rule && `rule ${printable(e.rule)}`,
        e.count ? `${e.count} sockets` : null,
        e.ttl && `for ${e.ttl}`,
        e.reason && `reason: ${printable(e.reason)}`,
        e.graceUntil && `grace until ${e.graceUntil}`,
        e.dryRun ? 'dry-run' : null,
      ].filter(Boolean);
      lines.push(
        `  ${e.at}  ${e.event.padEnd(6)}  ${printable(e.target)}${details.length > 0 ? `  ${details.join(', ')}` : ''}`,
      );
    }
  }
  lines.push('live table (now, against each rule):');
  for (const c of x.counts) {
    lines.push(
      `  ${printable(c.rule)} (per ${c.per}): ${c.count} ` +
        `socket(s)${c.key && c.key !== x.target ? ` from ${c.key}` : ''}, threshold ` +
        `${c.threshold}: ${c.over ? 'OVER, the detector flags it' : 'under'}`,
    );
  }
  lines.push(`policy:       ${describePolicy(x.policy.file ?? undefined, x.policy.source)}`);
  return lines;
}

export async function explainCommand(target: string, options: CommonOptions & { json?: boolean }): Promise<void> {
  const explanation = await explain(target, options);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(explanation, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${explanationLines(explanation).join('\n')}\n`);
}
