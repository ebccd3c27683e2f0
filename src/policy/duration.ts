// Durations ("500ms", "30s", "10m", "24h", "7d") and rates ("20/s", "600/m") as policy files and
// flags write them, and instants as logs and answers write them.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds, or null when the text is not a duration. "0" alone means zero. */
export function parseDuration(text: string): number | null {
  if (text === '0') return 0;
  const match = DURATION.exec(text.trim());
  if (match === null) return null;
  const ms = Number(match[1]) * UNITS[match[2]!]!;
  return Number.isFinite(ms) && Number.isSafeInteger(Math.round(ms)) ? Math.round(ms) : null;
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

/** Events per second, or null when the text is not a rate like "20/s". */
export function parseRate(text: string): number | null {
  const match = RATE.exec(text.trim());
  if (match === null) return null;
  const perSecond = Number(match[1]) / PER[match[2]!]!;
  return perSecond > 0 && Number.isFinite(perSecond) ? perSecond : null;
}

/** Text that reads back to exactly `perSecond`: 20 -> "20/s", 0.5 -> "30/m", 1/3600 -> "1/h". */
export function formatRate(perSecond: number): string {
  for (const [unit, per] of [['s', 1], ['m', 60], ['h', 3600]] as const) {
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
