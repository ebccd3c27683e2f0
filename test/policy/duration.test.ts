// Durations and rates as policy files and flags write them.
import { describe, expect, it } from 'vitest';
import {
  BOUNDS,
  TIMER_MAX_MS,
  formatDuration,
  formatInstant,
  formatRate,
  instantFormatter,
  parseBoundedDuration,
  parseDuration,
  parseRate,
} from '../../src/policy/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['1.5s', 1500],
    ['0.5m', 30_000],
    ['0', 0],
    ['0s', 0],
    [' 5s ', 5000],
    // A bare number is seconds, as fail2ban's bantime = 600 and DDoS Deflate's BAN_PERIOD=600.
    ['600', 600_000],
    ['5', 5000],
    ['1.5', 1500],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'ms', '10 minutes', '5 s', '5sec', '5S', '1w', '-5s', '+5s', 's', '1e3ms', '1,5s', '.5s', '5s5'])(
    'refuses %j',
    (text) => {
      expect(parseDuration(text)).toBeNull();
    },
  );
});

describe('BOUNDS', () => {
  it('keeps every timer below what setTimeout can wait (past 2^31-1 ms it fires at once: a busy loop)', () => {
    for (const key of ['interval', 'reconcileInterval', 'debounce', 'timeout'] as const)
      expect(BOUNDS[key].max).toBeLessThanOrEqual(TIMER_MAX_MS);
    // The decision queue's window is 1000 / rate ms.
    expect(1000 / BOUNDS.rate.min).toBeLessThanOrEqual(TIMER_MAX_MS);
  });

  it('keeps the longest ban, from any clock up to the year 10000, a valid date', () => {
    const year10000 = Date.UTC(10000, 0, 1);
    for (const key of ['ttl', 'grace'] as const)
      expect(() => new Date(year10000 + BOUNDS[key].max).toISOString()).not.toThrow();
  });

  it.each([
    ['0', BOUNDS.interval],
    ['1ms', BOUNDS.interval],
    ['30d', BOUNDS.interval],
    ['104000000d', BOUNDS.ttl],
    ['3651d', BOUNDS.grace],
    ['999ms', BOUNDS.ttl],
  ])('refuses %j outside its bounds', (text, bounds) => {
    expect(parseBoundedDuration(text, bounds)).toBeNull();
  });

  it.each([
    ['100ms', BOUNDS.interval, 100],
    ['1h', BOUNDS.interval, 3_600_000],
    ['3650d', BOUNDS.ttl, 3650 * 86_400_000],
    ['0', BOUNDS.grace, 0],
    ['600', BOUNDS.ttl, 600_000],
  ])('accepts %j at or inside its bounds', (text, bounds, ms) => {
    expect(parseBoundedDuration(text, bounds)).toBe(ms);
  });
});

describe('formatDuration', () => {
  it.each([
    [600_000, '10m'],
    [90_000, '90s'],
    [1500, '1500ms'],
    [86_400_000, '1d'],
    [3_600_000, '1h'],
    [5000, '5s'],
    [0, '0s'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('writes text that reads back to the same duration', () => {
    for (const ms of [1, 999, 1000, 1500, 61_000, 3_599_000, 86_400_000, 90_061_001])
      expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});

describe('parseRate', () => {
  it.each([
    ['20/s', 20],
    ['600/m', 10],
    ['30/m', 0.5],
    ['3600/h', 1],
    ['1.5/s', 1.5],
    [' 20/s ', 20],
  ])('reads %j as %d per second', (text, perSecond) => {
    expect(parseRate(text)).toBe(perSecond);
  });

  it.each(['0/s', '0/m', '20', '20/d', '20 / s', 'fast', '-1/s', '/s', '', '0.0000001/h', '0.5/h', '1000001/s'])(
    'refuses %j',
    (text) => {
      expect(parseRate(text)).toBeNull();
    },
  );
});

describe('formatRate', () => {
  it('writes whole rates per second and fractional ones per minute', () => {
    expect(formatRate(20)).toBe('20/s');
    expect(formatRate(0.5)).toBe('30/m');
    expect(formatRate(10)).toBe('10/s');
  });

  it.each(['20/s', '600/m', '30/m', '7/m', '1/m', '1/h', '90/h', '5/h', '1.5/s', '2.5/m', '1.5/m', '0.3/s'])(
    'writes the rate %s as text that reads back to the same rate',
    (text) => {
      const perSecond = parseRate(text)!;
      expect(parseRate(formatRate(perSecond))).toBe(perSecond);
    },
  );
});

describe('formatInstant', () => {
  it('writes an instant as ISO 8601 in UTC, also when it changes back and forth', () => {
    const t = Date.UTC(2026, 0, 15, 12, 0, 0);
    expect(formatInstant(t)).toBe('2026-01-15T12:00:00.000Z');
    expect(formatInstant(t)).toBe('2026-01-15T12:00:00.000Z');
    expect(formatInstant(t + 1)).toBe('2026-01-15T12:00:00.001Z');
    expect(formatInstant(t)).toBe('2026-01-15T12:00:00.000Z');
    expect(formatInstant(0)).toBe('1970-01-01T00:00:00.000Z');
  });
});

describe('instantFormatter', () => {
  it('gives formatters that each keep their own last instant', () => {
    const a = instantFormatter();
    const b = instantFormatter();
    const t = Date.UTC(2026, 0, 15, 12, 0, 0);
    for (let i = 0; i < 3; i++) {
      expect(a(t + i)).toBe(new Date(t + i).toISOString());
      expect(b(t + 60_000)).toBe('2026-01-15T12:01:00.000Z');
    }
  });
});
