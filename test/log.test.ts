// The JSON log lines: the fields operators and tools read, with pino's ISO time.
import { describe, expect, it } from 'vitest';
import { memoryLog } from './support/memory-log.js';

describe('createLogger', () => {
  it('stamps each line with the ISO time of the moment it was logged', async () => {
    const { log, events } = memoryLog();
    const before = Date.now();
    log.info({ event: 'ban', target: '198.51.100.7' }, 'first');
    await new Promise((resolve) => setTimeout(resolve, 5));
    log.info({ event: 'ban', target: '198.51.100.8' }, 'second');
    const after = Date.now();
    const times = events().map((e) => e.time as string);
    expect(times).toHaveLength(2);
    for (const time of times) {
      expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Date.parse(time)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(time)).toBeLessThanOrEqual(after);
    }
    expect(Date.parse(times[1]!) - Date.parse(times[0]!)).toBeGreaterThanOrEqual(4);
  });
});
