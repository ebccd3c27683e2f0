// What a policy reload changes, for the one `reload` log line: rules added, removed and changed (by
// name), allowlist entries added and removed, every other setting that differs, and the settings
// that only a restart can change (the firewall: its rules and sets are built at start; the metrics listen address).
import { formatDuration, formatRate } from './duration.js';
import type { Policy } from './schema.js';

export interface SettingChange {
  /** Dotted key as written in the policy file: `ban.ttl`, `rules[syn-flood].threshold`. */
  readonly key: string;
  readonly from: string;
  readonly to: string;
}

export interface PolicyDiff {
  readonly rulesAdded: readonly string[];
  readonly rulesRemoved: readonly string[];
  /** Per changed rule, what changed in it. */
  readonly rulesChanged: readonly { readonly name: string; readonly changes: readonly SettingChange[] }[];
  readonly allowlistAdded: readonly string[];
  readonly allowlistRemoved: readonly string[];
  /** interval, ban.*, reload.*, flood_signal.*, reconcile_interval. */
  readonly settings: readonly SettingChange[];
  /** firewall.* and metrics.*: these need a restart. */
  readonly restartOnly: readonly SettingChange[];
}

const DURATIONS = new Set([
  'interval',
  'reconcile_interval',
  'ban.ttl',
  'ban.max_ttl',
  'reload.debounce',
  'reload.timeout',
  'notify.webhook.timeout',
]);

/** A webhook's URL without its path and query: an incoming-webhook URL is itself the secret. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.pathname === '/' && parsed.search === '' ? parsed.origin : `${parsed.origin}/…`;
  } catch {
    return '(hidden)';
  }
}

function show(key: string, value: unknown): string {
  if (value === undefined) return '(none)';
  // Webhook headers carry tokens: the reload log line says that they changed, never what to.
  if (key.startsWith('notify.webhook.headers.')) return '(hidden)';
  if (key === 'notify.webhook.url' && typeof value === 'string') return redactUrl(value);
  if (typeof value === 'number' && DURATIONS.has(key)) return formatDuration(value);
  if (typeof value === 'number' && key === 'ban.rate') return formatRate(value);
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/** Leaves of a plain object as dotted keys; lists are leaves. */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix === '' ? key : `${prefix}.${key}`, out);
  } else {
    out.set(prefix, value);
  }
  return out;
}

function compare(before: unknown, after: unknown, prefix: string, label = (key: string) => key): SettingChange[] {
  const a = flatten(before, prefix, new Map());
  const b = flatten(after, prefix, new Map());
  const changes: SettingChange[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const from = a.get(key);
    const to = b.get(key);
    if (JSON.stringify(from) !== JSON.stringify(to))
      changes.push({ key: label(key), from: show(key, from), to: show(key, to) });
  }
  return changes;
}

export function diffPolicy(before: Policy, after: Policy): PolicyDiff {
  const oldRules = new Map(before.rules.map((rule) => [rule.name, rule]));
  const newRules = new Map(after.rules.map((rule) => [rule.name, rule]));
  const rulesChanged: { name: string; changes: SettingChange[] }[] = [];
  for (const [name, rule] of newRules) {
    const old = oldRules.get(name);
    if (old === undefined) continue;
    const changes = compare(old, rule, '');
    if (changes.length > 0) rulesChanged.push({ name, changes });
  }
  const oldAllow = new Set(before.allowlist);
  const newAllow = new Set(after.allowlist);
  const { rules: _r1, allowlist: _a1, mode: _m1, firewall: oldFirewall, metrics: oldMetrics, ...oldRest } = before;
  const { rules: _r2, allowlist: _a2, mode: _m2, firewall: newFirewall, metrics: newMetrics, ...newRest } = after;
  return {
    rulesAdded: [...newRules.keys()].filter((name) => !oldRules.has(name)),
    rulesRemoved: [...oldRules.keys()].filter((name) => !newRules.has(name)),
    rulesChanged,
    allowlistAdded: after.allowlist.filter((entry) => !oldAllow.has(entry)),
    allowlistRemoved: before.allowlist.filter((entry) => !newAllow.has(entry)),
    settings: compare(oldRest, newRest, ''),
    // The metrics server is bound once, at start (before the firewall is touched), like the firewall.
    restartOnly: [
      ...compare(oldFirewall, newFirewall, 'firewall'),
      ...compare(oldMetrics ?? {}, newMetrics ?? {}, 'metrics'),
    ],
  };
}

const isEmpty = (diff: PolicyDiff): boolean =>
  diff.rulesAdded.length +
    diff.rulesRemoved.length +
    diff.rulesChanged.length +
    diff.allowlistAdded.length +
    diff.allowlistRemoved.length +
    diff.settings.length +
    diff.restartOnly.length ===
  0;

/**
 * "rules added: a; rules changed: syn-flood (threshold 20 -> 10); allowlist added: 198.51.100.7", or "nothing changed".
 */
export function describeDiff(diff: PolicyDiff): string {
  if (isEmpty(diff)) return 'nothing changed';
  const parts: string[] = [];
  const change = (c: SettingChange, key = c.key) => `${key} ${c.from} -> ${c.to}`;
  if (diff.rulesAdded.length > 0) parts.push(`rules added: ${diff.rulesAdded.join(', ')}`);
  if (diff.rulesRemoved.length > 0) parts.push(`rules removed: ${diff.rulesRemoved.join(', ')}`);
  if (diff.rulesChanged.length > 0) {
    const rules = diff.rulesChanged.map((r) => `${r.name} (${r.changes.map((c) => change(c)).join(', ')})`);
    parts.push(`rules changed: ${rules.join(', ')}`);
  }
  if (diff.allowlistAdded.length > 0) parts.push(`allowlist added: ${diff.allowlistAdded.join(', ')}`);
  if (diff.allowlistRemoved.length > 0) parts.push(`allowlist removed: ${diff.allowlistRemoved.join(', ')}`);
  for (const c of [...diff.settings, ...diff.restartOnly]) parts.push(change(c));
  return parts.join('; ');
}
