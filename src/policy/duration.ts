// Durations ("500ms", "30s", "10m", "24h", "7d", or a bare number of seconds as fail2ban writes
// them) and rates ("20/s", "600/m") as policy files and flags write them, the bounds every one of
// them must keep, and instants as logs and answers write them.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
// The unit is optional: "600" is 600 seconds, as fail2ban's bantime and DDoS Deflate's BAN_PERIOD.
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;

/** Milliseconds, or null when the text is not a duration. A bare number is seconds. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (match === null) return null;
  const ms = Number(match[1]) * UNITS[match[2] ?? 's']!;
  return Number.isFinite(ms) && Number.isSafeInteger(Math.round(ms)) ? Math.round(ms) : null;
}

export interface Bounds {
  readonly min: number;
  readonly max: number;
}

/** The longest wait a timer can take: setTimeout fires at once (a busy loop) past 2^31-1 ms, 24.8 days. */
export const TIMER_MAX_MS = 2 ** 31 - 1;
const DAY = UNITS.d!;

/**
 * Every duration and rate floodgate takes, in the policy or on the command line, with its bounds.
 * Timers (interval, reconcile, debounce, timeout) stay far below TIMER_MAX_MS; ban lengths stop at
 * 10 years, so that an expiry is a valid date (they end in the year 275760) for any clock.
 */
export const BOUNDS = {
  interval: { min: 100, max: UNITS.h! },
  reconcileInterval: { min: 1000, max: DAY },
  ttl: { min: 1000, max: 3650 * DAY },
  grace: { min: 0, max: 3650 * DAY },
  debounce: { min: 0, max: DAY },
  timeout: { min: 1000, max: UNITS.h! },
  fleetPoll: { min: 100, max: 60_000 },
  fleetResync: { min: 5000, max: DAY },
  /** Bans per second: one per hour (a one-hour queue window) to a million (the bulk benchmarks). */
  rate: { min: 1 / 3600, max: 1_000_000 },
} as const satisfies Record<string, Bounds>;

/** "from 100ms to 1h", for messages. */
export function describeDurationBounds({ min, max }: Bounds): string {
  return `from ${formatDuration(min)} to ${formatDuration(max)}`;
}

/** Milliseconds within `bounds`, or null. */
export function parseBoundedDuration(text: string, bounds: Bounds): number | null {
  const ms = parseDuration(text);
  return ms !== null && ms >= bounds.min && ms <= bounds.max ? ms : null;
}

/** The shortest exact text: 600000 -> "10m", 90000 -> "90s", 1500 -> "1500ms". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit]!;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const RATE = /^(\d+(?:\.\d+)?)\/(s|m|h)$/;
const PER: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** Events per second, or null when the text is not a rate like "20/s" within BOUNDS.rate. */
export function parseRate(text: string): number | null {
  const match = RATE.exec(text.trim());
  if (match === null) return null;
  const perSecond = Number(match[1]) / PER[match[2]!]!;
  // A tiny rate would make the queue's window longer than a timer can wait; a huge one is a typo.
  return perSecond >= BOUNDS.rate.min && perSecond <= BOUNDS.rate.max ? perSecond : null;
}

/** Text that reads back to exactly `perSecond`: 20 -> "20/s", 0.5 -> "30/m", 1/3600 -> "1/h". */
export function formatRate(perSecond: number): string {
  for (const [unit, per] of [
    ['s', 1],
    ['m', 60],
    ['h', 3600],
  ] as const) {
    // "7/m" is stored as 7/60, and 7/60 * 60 is 7.000000000000001: round, then check it reads back.
    const count = Math.round(perSecond * per);
    if (count > 0 && count / per === perSecond) return `${count}/${unit}`;
  }
  return `${perSecond}/s`;
}

/**
 * ISO 8601 in UTC, as Date#toISOString, keeping the last answer: the 10k bans of one request share
 * one expiry, and their 10k log lines a few hundred milliseconds. A caller that formats another
 * series of instants gets its own formatter, so that the two do not keep replacing each other's.
 */
export function instantFormatter(): (ms: number) => string {
  let last = { ms: NaN, text: '' };
  return (ms) => {
    if (ms !== last.ms) last = { ms, text: new Date(ms).toISOString() };
    return last.text;
  };
}

export const formatInstant = instantFormatter();
