// Flag values are held to the same bounds as the policy keys they stand for, and refused with them.
import { describe, expect, it } from 'vitest';
import { durationOption } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import { BOUNDS } from '../../src/policy/duration.js';

describe('durationOption', () => {
  // --interval 0, 1ms and 30d made `run` spin at most of a core (30d overflows setTimeout).
  it.each(['0', '1ms', '30d', '2h', '-1s', 'soon'])('refuses run --interval %j, naming the bounds', (text) => {
    const parse = durationOption('--interval', BOUNDS.interval);
    expect(() => parse(text)).toThrow(UsageError);
    expect(() => parse(text)).toThrow(
      `--interval: expected a duration from 100ms to 1h, like 500ms, 30s, 10m, 24h or 7d (a bare number is seconds), got ${JSON.stringify(text)}`,
    );
  });

  it('refuses a --ttl or --grace past 10 years, which would end past the last valid date', () => {
    expect(() => durationOption('--ttl', BOUNDS.ttl)('104000000d')).toThrow(
      '--ttl: expected a duration from 1s to 3650d',
    );
    expect(() => durationOption('--grace', BOUNDS.grace)('104000000d')).toThrow(
      '--grace: expected a duration from 0s to 3650d',
    );
  });

  it('reads a bare number as seconds: --ttl 600 is ten minutes, as in fail2ban and DDoS Deflate', () => {
    expect(durationOption('--ttl', BOUNDS.ttl)('600')).toBe(600_000);
    expect(durationOption('--grace', BOUNDS.grace)('0')).toBe(0);
    expect(durationOption('--interval', BOUNDS.interval)('1')).toBe(1000);
    expect(durationOption('--ttl', BOUNDS.ttl)('3650d')).toBe(3650 * 86_400_000);
  });

  it('quotes at most about 80 characters of a bad value', () => {
    const message = (() => {
      try {
        durationOption('--ttl', BOUNDS.ttl)('9'.repeat(100_000));
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    expect(message.length).toBeLessThan(250);
    expect(message).toContain('(100000 characters)');
  });
});
