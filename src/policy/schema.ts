// The policy's shape, its defaults and the exact message for each kind of wrong value. Leaves are
// checked by small `expect…` helpers so that every message says what was expected and what was found.
import { z } from 'zod';
import { quoteInput } from '../errors.js';
import { formatCidr, parseCidr } from '../net/ip.js';
import { type SocketState, normalizeState } from '../table/socket-row.js';
import {
  BOUNDS,
  type Bounds,
  describeDurationBounds,
  formatDuration,
  formatRate,
  parseBoundedDuration,
  parseRate,
} from './duration.js';

/** How a found value is shown in a message: strings quoted, structures by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the key is missing)';
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return quoteInput(value);
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
    min === 1
      ? `a whole number > 0${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}`
      : `a whole number from ${min} to ${max}`,
    (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined),
  );

// A duration is text like "5s", or a number of seconds (YAML reads `interval: 5` as a number).
const duration = (bounds: Bounds, example: string) =>
  expect(`a duration ${describeDurationBounds(bounds)}, like ${example} (a bare number is seconds)`, (v) => {
    const ms =
      typeof v === 'string'
        ? parseBoundedDuration(v, bounds)
        : typeof v === 'number'
          ? parseBoundedDuration(String(v), bounds)
          : null;
    return ms ?? undefined;
  });

const rate = expect(`a rate from 1/h to ${formatRate(BOUNDS.rate.max)}, like 20/s`, (v) =>
  typeof v === 'string' ? (parseRate(v) ?? undefined) : undefined,
);

const bool = expect('true or false', (v) => (typeof v === 'boolean' ? v : undefined));

const oneOf = <const T extends string>(choices: readonly T[]) =>
  expect(`one of ${choices.join(' | ')}`, (v) => ((choices as readonly unknown[]).includes(v) ? (v as T) : undefined));

const cidrText = expect('an IP address or a network like 198.51.100.0/24', (v) => {
  const cidr = typeof v === 'string' ? parseCidr(v) : null;
  return cidr === null ? undefined : formatCidr(cidr);
});

const state = expect<SocketState>('a TCP state like SYN_RECV or ESTABLISHED', (v) =>
  typeof v === 'string' ? (normalizeState(v) ?? undefined) : undefined,
);

const listOf = <T extends z.ZodType>(item: T, what: string) =>
  z.array(item, { error: (issue) => `expected a list of ${what}, got ${describeValue(issue.input)}` });

// Names that reach a command line (chain, rule names) are limited to a safe alphabet and start with a
// letter or digit: a chain "-F" or "--flush" would reach iptables' argv as an option.
const name = (what: string, max: number, first: 'a letter' | 'a letter or digit') =>
  expect(`${what} (${first}, then letters, digits, '_', '-' or '.', at most ${max} characters)`, (v) =>
    typeof v === 'string' &&
    new RegExp(`^[A-Za-z${first === 'a letter' ? '' : '0-9'}][A-Za-z0-9_.-]{0,${max - 1}}$`).test(v)
      ? v
      : undefined,
  );

const commandArgv = expect('a command as a list of strings, like [systemctl, reload, nginx]', (v) =>
  Array.isArray(v) && v.length > 0 && v.every((part) => typeof part === 'string' && part !== '')
    ? (v as string[])
    : undefined,
);

export const PROTOS = ['tcp', 'udp', 'all'] as const;
export const BACKENDS = ['iptables', 'ipset', 'nftables'] as const;
export type BackendKind = (typeof BACKENDS)[number];

const ruleSchema = z.strictObject({
  name: name('a rule name', 40, 'a letter or digit'),
  /** Every state but LISTEN when absent. */
  states: listOf(state, 'TCP states')
    .min(1, {
      error:
        'expected at least one TCP state (leave states out for every ' +
        'state but LISTEN), got an empty list: the rule could never match',
    })
    .optional(),
  /** Local ports; every port when absent. */
  ports: listOf(wholeNumber(1, 65535), 'ports')
    .min(1, {
      error:
        'expected at least one port (leave ports out for every port), got an empty list: the rule could never match',
    })
    .optional(),
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

const banSchema = z
  .strictObject({
    ttl: duration(BOUNDS.ttl, '10m').default(600_000),
    max_ttl: duration(BOUNDS.ttl, '24h').default(86_400_000),
    max_active: wholeNumber(1, 10_000_000).default(5000),
    rate: rate.default(20),
    kill_connections: bool.default(true),
  })
  .superRefine((ban, ctx) => {
    // Every ban would silently last max_ttl instead: say so, naming both.
    if (ban.ttl > ban.max_ttl) {
      ctx.addIssue({
        code: 'custom',
        path: ['ttl'],
        input: ban.ttl,
        message:
          `expected at most ban.max_ttl (${formatDuration(ban.max_ttl)}), ` +
          `got ${formatDuration(ban.ttl)}: raise max_ttl or lower ttl`,
      });
    }
  });

const firewallSchema = z
  .strictObject({
    backend: oneOf(BACKENDS).default('iptables'),
    chain: name('a chain name', 28, 'a letter').default('INPUT'),
    target: oneOf(['DROP', 'REJECT'] as const).default('DROP'),
    table: oneOf(['filter', 'raw'] as const).default('filter'),
  })
  .superRefine((firewall, ctx) => {
    // What the backends would refuse at start: checked here, so that `policy check` refuses it too.
    if (firewall.backend === 'iptables' && firewall.table === 'raw') {
      ctx.addIssue({
        code: 'custom',
        path: ['table'],
        input: firewall.table,
        message:
          'expected filter with firewall.backend iptables (table: raw needs backend ipset or ' +
          'nftables; the iptables backend keeps one rule per target in the filter table), got "raw"',
      });
    }
    if (firewall.table === 'raw' && firewall.target === 'REJECT') {
      ctx.addIssue({
        code: 'custom',
        path: ['target'],
        input: firewall.target,
        message: 'expected DROP with firewall.table raw (REJECT is not possible in the raw table), got "REJECT"',
      });
    }
  });

const reloadSchema = z.strictObject({
  command: commandArgv,
  debounce: duration(BOUNDS.debounce, '30s').default(30_000),
  timeout: duration(BOUNDS.timeout, '10s').default(10_000),
});

const floodSignalSchema = z.strictObject({
  /** Kernel SYN cookies sent per second that mean a SYN flood is under way. */
  syncookies_per_second: wholeNumber(1).default(100),
  /** Listen queue drops per second (ListenDrops, TCPReqQFullDrop) that mean the same. */
  drops_per_second: wholeNumber(1).default(100),
  /** Half-open connections in total that mean the same. */
  syn_recv_total: wholeNumber(1).default(1000),
});

/** A listen address: an IP literal and a port, IPv6 in brackets (`127.0.0.1:9464`, `[::1]:9464`). */
export function parseListen(text: string): { readonly host: string; readonly port: number } | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(text);
  if (match === null) return null;
  const host = match[1] ?? match[2]!;
  const port = Number(match[3]);
  const cidr = parseCidr(host);
  if (cidr === null || cidr.prefix !== (cidr.family === 4 ? 32 : 128) || port < 1 || port > 65535) return null;
  return { host, port };
}

const listen = expect('an address and port like 127.0.0.1:9464 or [::1]:9464', (v) =>
  typeof v === 'string' && parseListen(v) !== null ? v : undefined,
);

// Opt-in: without this key nothing listens.
const metricsSchema = z.strictObject({
  listen,
});

/** What a notification can be sent for. */
export const NOTIFY_EVENTS = ['ban', 'unban', 'expire', 'refused', 'attack', 'error'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

const webhookUrl = expect('an http:// or https:// URL, like https://hooks.example.com/T000/B000', (v) => {
  if (typeof v !== 'string') return undefined;
  try {
    const url = new URL(v);
    return url.protocol === 'http:' || url.protocol === 'https:' ? v : undefined;
  } catch {
    return undefined;
  }
});

// Header names and values as HTTP allows them: a newline would let a value start a header of its own.
const headers = expect('a mapping of HTTP header names to text, like {Authorization: "Bearer …"}', (v) =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.entries(v).every(
    ([key, value]) => /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key) && typeof value === 'string' && !/[\r\n\0]/.test(value),
  )
    ? (v as Record<string, string>)
    : undefined,
);

const notifySchema = z
  .strictObject({
    /**
     * Run for each batch of events, no shell: the events as JSON on stdin, the main fields in FLOODGATE_* variables.
     */
    command: commandArgv.optional(),
    /** An HTTP POST of the batch as JSON, with a `text` field for Slack/Mattermost-style incoming webhooks. */
    webhook: z
      .strictObject({
        url: webhookUrl,
        headers: headers.optional(),
        timeout: duration(BOUNDS.timeout, '10s').default(10_000),
      })
      .optional(),
    /** Which events are sent. */
    on: listOf(oneOf(NOTIFY_EVENTS), 'events')
      .min(1, {
        error: `expected at least one of ${NOTIFY_EVENTS.join(', ')} (leave notify out for none), got an empty list`,
      })
      .default([...NOTIFY_EVENTS]),
    /** A burst is one notification: a summary and this many of its targets. */
    max_targets: wholeNumber(1, 1000).default(20),
    /** Attempts after the first failed one, with a doubling wait between them. */
    retries: wholeNumber(0, 10).default(3),
  })
  .superRefine((notify, ctx) => {
    if (notify.command === undefined && notify.webhook === undefined) {
      ctx.addIssue({
        code: 'custom',
        input: notify,
        message: 'expected command: [argv…] or webhook: {url: …} (or both), got neither: nothing would be notified',
      });
    }
  });

const absolutePath = (what: string) =>
  expect(`${what} as an absolute path (secrets are read from files, never written in the policy)`, (v) =>
    typeof v === 'string' && v.startsWith('/') && !v.includes('\0') ? v : undefined,
  );

const lapiUrl = expect('an http:// or https:// URL like http://127.0.0.1:8080', (v) => {
  if (typeof v !== 'string') return undefined;
  try {
    const url = new URL(v);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === ''
      ? v.replace(/\/+$/, '')
      : undefined;
  } catch {
    return undefined;
  }
});

/** The host's name in the fleet (default: the hostname): it tags its decisions, so that it never pulls its own. */
const hostName = name('a host name', 63, 'a letter or digit');

const redisUrlText = expect('a redis:// or rediss:// URL like redis://127.0.0.1:6379 (no password in it)', (v) => {
  if (typeof v !== 'string') return undefined;
  try {
    const url = new URL(v);
    return url.protocol === 'redis:' || url.protocol === 'rediss:' ? v : undefined;
  } catch {
    return undefined;
  }
});
/** A password in the URL is refused without being repeated: it goes in password_file. */
const redisUrl = z
  .unknown()
  .superRefine((value, ctx) => {
    let password = '';
    try {
      password = typeof value === 'string' ? new URL(value).password : '';
    } catch {}
    if (password !== '')
      ctx.addIssue({
        code: 'custom',
        message:
          'expected a redis:// or rediss:// URL with no password in it (put it in password_file), got one with a password',
        input: '',
        abort: true,
      });
  })
  .pipe(redisUrlText);

const sentinelAddress = expect('a sentinel address like 10.0.0.5:26379', (v) => {
  const m = typeof v === 'string' ? /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(v) : null;
  return m && Number(m[2]) >= 1 && Number(m[2]) <= 65_535 ? (v as string) : undefined;
});

/** Fleet bans through CrowdSec's Local API: this host is a machine (push) and a bouncer (pull). */
const crowdsecFleetSchema = z.strictObject({
  engine: z.literal('crowdsec'),
  url: lapiUrl,
  host: hostName.optional(),
  machine: name('a machine name', 63, 'a letter or digit'),
  password_file: absolutePath('the machine password file'),
  bouncer_key_file: absolutePath('the bouncer key file'),
  poll: duration(BOUNDS.fleetPoll, '500ms').default(500),
  resync: duration(BOUNDS.fleetResync, '60s').default(60_000),
  origins: listOf(name('an origin', 40, 'a letter or digit'), 'origins')
    .min(1, { error: 'expected at least one origin (floodgate for the fleet’s own bans), got an empty list' })
    .default(['floodgate']),
});

/** Fleet bans in Redis (issue 14): one key per ban and a stream of changes every host follows. */
const redisFleetSchema = z
  .strictObject({
    engine: z.literal('redis'),
    url: redisUrl,
    host: hostName.optional(),
    /** The password (requirepass or the ACL user's) is read from this file, never from the policy. */
    password_file: absolutePath('the Redis password file').optional(),
    /** rediss:// only: the CA certificates (PEM) the server's (and sentinels') certificate must chain to. */
    tls_ca_file: expect('the CA certificate file (PEM) as an absolute path', (v) =>
      typeof v === 'string' && v.startsWith('/') && !v.includes('\0') ? v : undefined,
    ).optional(),
    /** Every key floodgate writes starts with it: several fleets can share one Redis. */
    prefix: expect('a key prefix of 1 to 64 letters, digits, or . _ : - characters, like "fg:"', (v) =>
      typeof v === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(v) ? v : undefined,
    ).default('fg:'),
    resync: duration(BOUNDS.fleetResync, '60s').default(60_000),
    /** Redis Sentinel: the sentinels asked for the current primary of `sentinel_name` (the URL's host is then unused). */
    sentinels: listOf(sentinelAddress, 'sentinel addresses').min(1).optional(),
    sentinel_name: name('a Sentinel primary name', 64, 'a letter or digit').optional(),
  })
  .refine((f) => (f.sentinels === undefined) === (f.sentinel_name === undefined), {
    error: 'expected sentinels and sentinel_name together, or neither',
    path: ['sentinel_name'],
  })
  .refine((f) => f.tls_ca_file === undefined || /^rediss:/i.test(f.url), {
    error: (issue) =>
      `expected tls_ca_file only with a rediss:// URL (TLS), got url ${describeValue((issue.input as { url?: unknown }).url)}`,
    path: ['tls_ca_file'],
  });

/**
 * Fleet bans through an engine both push to and pull from; the section is the engine's, each with
 * its own keys.
 */
const fleetSchema = z.discriminatedUnion('engine', [crowdsecFleetSchema, redisFleetSchema], {
  error: (issue) =>
    issue.code === 'invalid_union'
      ? `expected one of crowdsec | redis, got ${describeValue((issue.input as { engine?: unknown } | undefined)?.engine)}`
      : undefined,
});

export const policySchema = z.strictObject({
  mode: oneOf(['dry-run', 'enforce'] as const).default('dry-run'),
  interval: duration(BOUNDS.interval, '5s').default(5000),
  allowlist: listOf(cidrText, 'addresses or networks').default([]),
  rules: listOf(ruleSchema, 'rules').min(1, { error: 'expected at least one rule, got an empty list' }),
  ban: banSchema.prefault({}),
  firewall: firewallSchema.prefault({}),
  reload: reloadSchema.optional(),
  /** The Prometheus endpoint (GET /metrics); absent: no metrics server. */
  metrics: metricsSchema.optional(),
  /** Notifications of bans, unbans, expiries, refusals, attacks and errors (src/hooks/notifier.ts). */
  notify: notifySchema.optional(),
  flood_signal: floodSignalSchema.prefault({}),
  /** How often the firewall is re-read and repaired against the ban store. */
  reconcile_interval: duration(BOUNDS.reconcileInterval, '30s').default(30_000),
  /** Bans shared with other hosts; none when absent. */
  fleet: fleetSchema.optional(),
});

export type Policy = z.output<typeof policySchema>;
export type Rule = Policy['rules'][number];
