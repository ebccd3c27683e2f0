// The policy's shape, its defaults and the exact message for each kind of wrong value. Leaves are
// checked by small `expect…` helpers so that every message says what was expected and what was found.
import { z } from 'zod';
import { formatCidr, parseCidr } from '../net/ip.js';
import { type SocketState, normalizeState } from '../table/socket-row.js';
import { parseDuration, parseRate } from './duration.js';

/** How a found value is shown in a message: strings quoted, structures by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the key is missing)';
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function expect<T>(what: string, check: (value: unknown) => T | undefined) {
  return z.unknown().transform((value, ctx): T => {
    const result = check(value);
    if (result === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${describeValue(value)}`, input: value });
      return z.NEVER;
    }
    return result;
  });
}

const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  expect(
    min === 1 ? `a whole number > 0${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}` : `a whole number from ${min} to ${max}`,
    (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined),
  );

const duration = (what = 'a duration like 500ms, 30s, 10m or 24h', min = 0) =>
  expect(what, (v) => {
    const ms = typeof v === 'string' ? parseDuration(v) : v === 0 ? 0 : null;
    return ms !== null && ms >= min ? ms : undefined;
  });

const rate = expect('a rate like 20/s', (v) => (typeof v === 'string' ? (parseRate(v) ?? undefined) : undefined));

const bool = expect('true or false', (v) => (typeof v === 'boolean' ? v : undefined));

const oneOf = <const T extends string>(choices: readonly T[]) =>
  expect(`one of ${choices.join(' | ')}`, (v) => (choices as readonly unknown[]).includes(v) ? (v as T) : undefined);

const cidrText = expect('an IP address or a network like 198.51.100.0/24', (v) => {
  const cidr = typeof v === 'string' ? parseCidr(v) : null;
  return cidr === null ? undefined : formatCidr(cidr);
});

const state = expect<SocketState>('a TCP state like SYN_RECV or ESTABLISHED', (v) =>
  typeof v === 'string' ? (normalizeState(v) ?? undefined) : undefined,
);

const listOf = <T extends z.ZodType>(item: T, what: string) =>
  z.array(item, { error: (issue) => `expected a list of ${what}, got ${describeValue(issue.input)}` });

// Names that reach a command line (chain, rule names in comments) are limited to a safe alphabet.
const name = (what: string, max: number) =>
  expect(`${what} (letters, digits, '_', '-' or '.', at most ${max} characters)`, (v) =>
    typeof v === 'string' && new RegExp(`^[A-Za-z0-9_.-]{1,${max}}$`).test(v) ? v : undefined,
  );

const commandArgv = expect('a command as a list of strings, like [systemctl, reload, nginx]', (v) =>
  Array.isArray(v) && v.length > 0 && v.every((part) => typeof part === 'string' && part !== '') ? (v as string[]) : undefined,
);

export const PROTOS = ['tcp', 'udp', 'all'] as const;
export const BACKENDS = ['iptables', 'ipset', 'nftables'] as const;
export type BackendKind = (typeof BACKENDS)[number];

const ruleSchema = z.strictObject({
  name: name('a rule name', 40),
  /** Every state but LISTEN when absent. */
  states: listOf(state, 'TCP states').optional(),
  /** Local ports; every port when absent. */
  ports: listOf(wholeNumber(1, 65535), 'ports').optional(),
  proto: oneOf(PROTOS).default('tcp'),
  per: oneOf(['ip', 'net'] as const).default('ip'),
  /** Flagged when the count is greater than this. */
  threshold: wholeNumber(1),
  /** The network size for `per: net`. */
  prefix4: wholeNumber(8, 32).default(24),
  prefix6: wholeNumber(16, 128).default(64),
  /**
   * `per: net` only: the distinct sources a network needs, counting only sources no `per: ip` rule
   * flagged in the same pass, before it is banned whole.
   */
  min_sources: wholeNumber(1).default(3),
});

const banSchema = z.strictObject({
  ttl: duration('a duration of at least 1s, like 10m', 1000).default(600_000),
  max_ttl: duration('a duration of at least 1s, like 24h', 1000).default(86_400_000),
  max_active: wholeNumber(1, 10_000_000).default(5000),
  rate: rate.default(20),
  kill_connections: bool.default(true),
});

const firewallSchema = z.strictObject({
  backend: oneOf(BACKENDS).default('iptables'),
  chain: name('a chain name', 28).default('INPUT'),
  target: oneOf(['DROP', 'REJECT'] as const).default('DROP'),
  table: oneOf(['filter', 'raw'] as const).default('filter'),
});

const reloadSchema = z.strictObject({
  command: commandArgv,
  debounce: duration().default(30_000),
  timeout: duration('a duration of at least 1s, like 10s', 1000).default(10_000),
});

const floodSignalSchema = z.strictObject({
  /** Kernel SYN cookies sent per second that mean a SYN flood is under way. */
  syncookies_per_second: wholeNumber(1).default(100),
  /** Listen queue drops per second (ListenDrops, TCPReqQFullDrop) that mean the same. */
  drops_per_second: wholeNumber(1).default(100),
  /** Half-open connections in total that mean the same. */
  syn_recv_total: wholeNumber(1).default(1000),
});

export const policySchema = z.strictObject({
  mode: oneOf(['dry-run', 'enforce'] as const).default('dry-run'),
  interval: duration('a duration of at least 100ms, like 5s', 100).default(5000),
  allowlist: listOf(cidrText, 'addresses or networks').default([]),
  rules: listOf(ruleSchema, 'rules').min(1, { error: 'expected at least one rule, got an empty list' }),
  ban: banSchema.prefault({}),
  firewall: firewallSchema.prefault({}),
  reload: reloadSchema.optional(),
  flood_signal: floodSignalSchema.prefault({}),
  /** How often the firewall is re-read and repaired against the ban store. */
  reconcile_interval: duration('a duration of at least 1s, like 30s', 1000).default(30_000),
});

export type Policy = z.output<typeof policySchema>;
export type Rule = Policy['rules'][number];
