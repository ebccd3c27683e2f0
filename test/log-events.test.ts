import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type LoggedEvent, tapEvents } from '../src/log-events.js';
import { createLogger } from '../src/log.js';

function quietLogger(level: 'debug' | 'info' | 'warn' | 'error') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: createLogger({ format: 'json', level, destination }), lines };
}

describe('tapEvents', () => {
  it('hands every call with an event field to the listener, whatever the log level lets through', () => {
    const { log, lines } = quietLogger('error');
    const seen: LoggedEvent[] = [];
    tapEvents(log, (event) => seen.push(event));
    log.info({ event: 'ban', target: '198.51.100.7' }, 'ban 198.51.100.7');
    log.warn({ event: 'refused', target: '192.0.2.1' }, 'refused');
    log.info({ other: 1 }, 'no event field');
    log.error({ event: 'error', during: 'scan' }, 'scan failed');
    expect(seen.map((e) => [e.level, e.fields.event, e.msg])).toEqual([
      ['info', 'ban', 'ban 198.51.100.7'],
      ['warn', 'refused', 'refused'],
      ['error', 'error', 'scan failed'],
    ]);
    // The log level still decides what is written.
    log.flush?.();
    expect(lines.join('')).not.toContain('"event":"ban"');
  });

  it('never lets a failing listener break logging, and can be removed', () => {
    const { log } = quietLogger('info');
    let calls = 0;
    const untap = tapEvents(log, () => {
      calls++;
      throw new Error('listener bug');
    });
    expect(() => log.info({ event: 'ban' }, 'x')).not.toThrow();
    untap();
    log.info({ event: 'ban' }, 'y');
    expect(calls).toBe(1);
  });
});
