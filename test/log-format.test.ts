// The journal and terminal formats: one line per event, a syslog priority the journal can filter on,
// NO_COLOR, and the choice of format from the flag, the environment, the journal and the terminal.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { chooseFormat, formatRecord, isJournalStream } from '../src/log-format.js';

function capture(options: Parameters<typeof createLogger>[0] & { isTTY?: boolean }) {
  const lines: string[] = [];
  const destination = Object.assign(
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    }),
    { isTTY: options.isTTY ?? false },
  );
  const log = createLogger({ ...options, destination });
  return { log, text: () => lines.join('') };
}

describe('journal format', () => {
  it('gives every event one line that starts with its syslog priority', () => {
    const { log, text } = capture({ format: 'journal', level: 'debug', env: {} });
    log.debug({ event: 'command', argv: ['iptables', '-S'] }, 'iptables -S');
    log.info(
      {
        event: 'ban',
        target: '198.51.100.7',
        command: 'iptables -w -A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP',
      },
      'ban 198.51.100.7 (syn-flood, 30 sockets) for 10m',
    );
    log.warn({ event: 'refused', target: '127.0.0.1' }, 'refused to ban 127.0.0.1: it is allowlisted');
    log.error({ event: 'error', err: new Error('iptables: line 2 failed\nsecond line') }, 'firewall commit failed');
    log.error(
      { event: 'reload', errors: ['p.yaml:3 a: x', 'p.yaml:4 b: y'] },
      'policy reload refused:\np.yaml:3 a: x\np.yaml:4 b: y',
    );
    const lines = text().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toEqual([
      '<7>iptables -S',
      '<6>ban 198.51.100.7 (syn-flood, 30 sockets) for 10m; command: iptables -w -A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP',
      '<4>refused to ban 127.0.0.1: it is allowlisted',
      '<3>firewall commit failed: iptables: line 2 failed\\nsecond line',
      '<3>policy reload refused:\\np.yaml:3 a: x\\np.yaml:4 b: y',
    ]);
  });

  it('writes a terminal escape in a reason as text', () => {
    expect(formatRecord({ level: 30, msg: 'banned: \x1b]0;owned\x07 x' }, 'journal')).toBe(
      '<6>banned: \\x1b]0;owned\\x07 x',
    );
  });
});

describe('pretty format', () => {
  it('is one line per event: local time, level, message and the command', () => {
    const { log, text } = capture({ format: 'pretty', env: {} });
    log.info({ event: 'ban', command: 'iptables -w -A INPUT -s 198.51.100.7/32 -j DROP' }, 'ban 198.51.100.7');
    log.warn({ event: 'refused' }, 'refused to ban 127.0.0.1');
    const lines = text().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}ban 198\.51\.100\.7; command: iptables -w -A INPUT -s 198\.51\.100\.7\/32 -j DROP$/,
    );
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}refused to ban 127\.0\.0\.1$/);
  });

  it('is coloured on a terminal unless NO_COLOR is set', () => {
    const coloured = capture({ format: 'pretty', env: {}, isTTY: true });
    coloured.log.warn('x');
    expect(coloured.text()).toContain('\x1b[33m');
    const plain = capture({ format: 'pretty', env: { NO_COLOR: '1' }, isTTY: true });
    plain.log.warn('x');
    expect(plain.text()).not.toContain('\x1b');
  });
});

describe('choosing the format', () => {
  const journalFd = { dev: 64770n, ino: 12345n };
  it('the journal only when JOURNAL_STREAM names the very descriptor the lines go to', () => {
    const stat = () => journalFd;
    expect(isJournalStream({ JOURNAL_STREAM: '64770:12345' }, 1, stat)).toBe(true);
    // A shell in a terminal that systemd started inherits the variable, for another stream.
    expect(isJournalStream({ JOURNAL_STREAM: '64770:99' }, 1, stat)).toBe(false);
    expect(isJournalStream({}, 1, stat)).toBe(false);
  });

  it('flag, then FLOODGATE_LOG_FORMAT, then journal, then terminal; JSON otherwise', () => {
    expect(chooseFormat({ flag: 'json', env: { FLOODGATE_LOG_FORMAT: 'journal' }, fd: 1, isTTY: true })).toBe('json');
    expect(chooseFormat({ env: { FLOODGATE_LOG_FORMAT: 'journal' }, fd: 1, isTTY: true })).toBe('journal');
    expect(chooseFormat({ env: {}, fd: 1, isTTY: true })).toBe('pretty');
    expect(chooseFormat({ env: {}, fd: 1, isTTY: false })).toBe('json');
    expect(() => chooseFormat({ env: { FLOODGATE_LOG_FORMAT: 'xml' }, fd: 1, isTTY: false })).toThrow(
      'FLOODGATE_LOG_FORMAT: expected one of pretty | journal | json, got "xml"',
    );
  });

  it('FLOODGATE_LOG_LEVEL sets the level, and a wrong one is named', () => {
    const quiet = capture({ format: 'journal', env: { FLOODGATE_LOG_LEVEL: 'warn' } });
    quiet.log.info('not shown');
    quiet.log.warn('shown');
    expect(quiet.text()).toBe('<4>shown\n');
    expect(() => createLogger({ env: { FLOODGATE_LOG_LEVEL: 'verbose' } })).toThrow(
      'FLOODGATE_LOG_LEVEL: expected one of debug | info | warn | error, got "verbose"',
    );
  });
});
