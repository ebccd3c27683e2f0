// The daemon's log destination: a burst of lines is written in a few write(2) calls, and no line is
// lost on flush, at exit or after an uncaught exception.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LogDestination } from '../src/log-destination.js';

/** A write(2) stand-in: keeps every call's bytes; `accept` can make it write less or fail. */
function recorder(
  accept: (call: number, length: number) => number | NodeJS.ErrnoException = (_call, length) => length,
) {
  const calls: Buffer[] = [];
  let attempts = 0;
  const write = (_fd: number, data: Uint8Array, offset: number, length: number): number => {
    const answer = accept(attempts++, length);
    if (typeof answer !== 'number') throw answer;
    calls.push(Buffer.from(data.subarray(offset, offset + answer)));
    return answer;
  };
  // Decoded at the end: a partial write may cut a character in two.
  return { calls, write, text: () => Buffer.concat(calls).toString('utf8') };
}

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const lines = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `{"n":${from + i},"text":"ü line ${from + i}"}\n`);

describe('LogDestination', () => {
  it('writes the lines of one synchronous burst in one call, once that code is done', async () => {
    const out = recorder();
    const destination = new LogDestination(99, { write: out.write });
    for (const line of lines(1000)) destination.write(line);
    expect(out.calls).toEqual([]);
    await nextTurn();
    expect(out.calls).toHaveLength(1);
    expect(out.text()).toBe(lines(1000).join(''));
  });

  it('writes at once on flush(), and when the buffer is full, keeping the order', () => {
    const out = recorder();
    const destination = new LogDestination(99, { write: out.write, bufferSize: 100 });
    const burst = lines(40);
    for (const line of burst) destination.write(line);
    // 40 lines of about 30 bytes through a 100-byte buffer: written along the way, not all at the end.
    expect(out.calls.length).toBeGreaterThan(5);
    destination.write(`${'x'.repeat(250)}\n`); // longer than the buffer
    destination.flush();
    expect(out.text()).toBe(`${burst.join('')}${'x'.repeat(250)}\n`);
  });

  it('finishes a partial write and waits out EAGAIN (a full pipe) without losing a byte', () => {
    const out = recorder((call, length) => (call === 1 ? errno('EAGAIN') : Math.min(length, 7)));
    const destination = new LogDestination(99, { write: out.write });
    for (const line of lines(3)) destination.write(line);
    destination.flush();
    expect(out.text()).toBe(lines(3).join(''));
  });

  it('stops writing once the reader is gone (EPIPE), as pino does, instead of throwing', () => {
    const out = recorder(() => errno('EPIPE'));
    const destination = new LogDestination(99, { write: out.write });
    destination.write(lines(1)[0]!);
    expect(() => destination.flush()).not.toThrow();
    destination.write(lines(1)[0]!);
    expect(() => destination.flush()).not.toThrow();
  });

  it('throws other write errors to the caller of flush', () => {
    const destination = new LogDestination(99, { write: recorder(() => errno('EBADF')).write });
    destination.write(lines(1)[0]!);
    expect(() => destination.flush()).toThrow('EBADF');
  });

  it('is flushed by pino’s logger.flush(), so a caller can have its lines out before it goes on', () => {
    const out = recorder();
    const log = pino({ base: null, timestamp: false }, new LogDestination(99, { write: out.write }));
    log.info({ event: 'ban', target: '198.51.100.7' }, 'ban 198.51.100.7');
    expect(out.calls).toEqual([]);
    log.flush();
    expect(JSON.parse(out.text())).toEqual({
      level: 30,
      event: 'ban',
      target: '198.51.100.7',
      msg: 'ban 198.51.100.7',
    });
  });

  it.each([
    ['an uncaught exception', "throw new Error('boom')"],
    ['process.exit()', 'process.exit(3)'],
  ])('writes what waits when the process ends by %s', (_how, ending) => {
    const module = fileURLToPath(new URL('../src/log-destination.ts', import.meta.url));
    const code = `const { LogDestination } = await import(${JSON.stringify(module)}); const d = new LogDestination(1); d.write('audit line 1\\n'); d.write('audit line 2\\n'); ${ending};`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(child.status).not.toBe(0);
    expect(child.stdout).toBe('audit line 1\naudit line 2\n');
  });
});
