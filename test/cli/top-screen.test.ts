// What `floodgate top` draws: the attacker first, against its rule's threshold, then as banned with
// its time left; every frame inside the terminal's width and height; colour only when asked for.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { ListedBan, RecentEvent, StatusResult } from '../../src/daemon/protocol.js';
import { loadPolicy } from '../../src/policy/load-policy.js';
import { FLOOD_COUNTERS, type FloodCounters } from '../../src/table/kernel-counters.js';
import type { SocketRow } from '../../src/table/socket-row.js';
import { SocketTable } from '../../src/table/socket-table.js';
import { ruleGroups, useColor } from '../../src/cli/top.js';
import { type TopFrame, renderTop, timeLeft } from '../../src/cli/top-screen.js';

const policy = loadPolicy(fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))).policy;
const NOW = Date.parse('2026-12-01T10:00:00Z');
const ATTACKER = '198.51.100.66';
const zero = Object.fromEntries(FLOOD_COUNTERS.map((n) => [n, 0])) as FloodCounters;

function table(): SocketTable {
  const rows: SocketRow[] = [];
  for (let i = 0; i < 30; i++)
    rows.push({ proto: 'tcp', state: 'SYN_RECV', localPort: 80, remote: ATTACKER, remotePort: 40000 + i });
  for (let i = 0; i < 3; i++)
    rows.push({ proto: 'tcp', state: 'ESTABLISHED', localPort: 443, remote: `203.0.113.${i + 1}`, remotePort: 50000 });
  rows.push({ proto: 'tcp', state: 'LISTEN', localPort: 80, remote: '', remotePort: 0 });
  return SocketTable.from(rows);
}

function frame(extra: Partial<TopFrame> = {}): TopFrame {
  return {
    now: NOW,
    source: '/proc/net',
    interval: 1000,
    total: 34,
    states: { ESTABLISHED: 3, SYN_RECV: 30, LISTEN: 1 },
    groups: ruleGroups(table(), policy, 5),
    counters: { ...zero, SyncookiesSent: 1234 },
    rates: { ...zero, SyncookiesSent: 250 },
    daemon: null,
    bans: [],
    events: null,
    policy: 'policy.yaml (--policy)',
    ...extra,
  };
}

const ban = (target: string, expiresInMs: number): ListedBan => ({
  target,
  rule: 'syn-flood',
  reason: null,
  count: 30,
  createdAt: new Date(NOW - 2000).toISOString(),
  expiresAt: new Date(NOW + expiresInMs).toISOString(),
  dryRun: false,
  source: 'local',
});

const status: StatusResult = {
  daemon: { pid: 4242, since: '2026-12-01T09:00:00.000Z' },
  mode: 'enforce',
  backend: 'iptables',
  interval: '1s',
  active: 1,
  refused: 0,
  queued: 0,
  lastScan: { at: '2026-12-01T09:59:59.500Z', durationMs: 3, sockets: 34 },
};

describe('floodgate top: the screen', () => {
  it('counts each source the way its rule does, and shows the attacker first, over its threshold', () => {
    const groups = ruleGroups(table(), policy, 5);
    expect(groups).toContainEqual({ target: ATTACKER, rule: 'syn-flood', per: 'ip', count: 30, threshold: 20 });
    // http-flood counts ESTABLISHED on 80 and 443 only; the LISTEN socket has no source.
    expect(groups.filter((g) => g.rule === 'http-flood').map((g) => g.target)).toEqual([
      '203.0.113.1',
      '203.0.113.2',
      '203.0.113.3',
    ]);
    const lines = renderTop(frame(), { columns: 100, rows: 40 }, false);
    const first = lines.findIndex((l) => l.startsWith('TOP SOURCES'));
    expect(lines[first + 1]).toMatch(/^198\.51\.100\.66\s+30 {2}> 20\s+syn-flood\s+OVER$/);
    expect(lines).toContain('daemon: not running (the table and the saved bans only)');
    expect(lines.some((l) => l.includes('SyncookiesSent 250/s (1234)'))).toBe(true);
  });

  it('marks a banned source and lists the ban with its time left, and the daemon’s events newest first', () => {
    const events: RecentEvent[] = [
      {
        at: '2026-12-01T09:59:58.000Z',
        level: 'info',
        event: 'ban',
        target: ATTACKER,
        msg: `ban ${ATTACKER} (syn-flood, 30 sockets) for 10m`,
      },
      {
        at: '2026-12-01T09:59:59.000Z',
        level: 'warn',
        event: 'refused',
        target: '192.0.2.1',
        msg: 'refused to ban 192.0.2.1: \x1b]52;c;evil\x07',
      },
    ];
    const lines = renderTop(
      frame({ daemon: status, bans: [ban(ATTACKER, 598_000)], events }),
      { columns: 120, rows: 40 },
      false,
    );
    expect(lines.find((l) => l.startsWith(ATTACKER) && l.includes('syn-flood') && l.includes('> 20'))).toMatch(
      /banned$/,
    );
    expect(lines).toContainEqual(expect.stringMatching(/^198\.51\.100\.66\s+syn-flood\s+30 {2}9m 58s\s+enforced$/));
    expect(lines[1]).toBe(
      'daemon: pid 4242, enforce with iptables, every 1s;  bans: 1 active, 0 queued, 0 refused;  last scan: 34 sockets in 3 ms',
    );
    const title = lines.indexOf('LATEST EVENTS');
    // A hostile message cannot reach the terminal as an escape sequence.
    expect(lines[title + 1]).toBe('09:59:59  warn   refused to ban 192.0.2.1: \\e]52;c;evil\\u0007');
    expect(lines[title + 2]).toBe(`09:59:58  info   ban ${ATTACKER} (syn-flood, 30 sockets) for 10m`);
  });

  it('shows a daemon it cannot reach, and why, wrapped to the width', () => {
    const problem =
      'cannot reach /var/lib/floodgate/control.sock: permission denied for nobody (uid 65534), the user this command runs as';
    const lines = renderTop(frame({ daemonProblem: problem }), { columns: 60, rows: 40 }, false);
    expect(lines.slice(1, 3)).toEqual([
      'daemon: cannot reach /var/lib/floodgate/control.sock:',
      'permission denied for nobody (uid 65534), the user this',
    ]);
  });

  it('says why there are no events: no daemon, or one too old to answer the request', () => {
    const title = (lines: string[]) => lines[lines.indexOf('LATEST EVENTS') + 1];
    expect(title(renderTop(frame(), { columns: 100, rows: 40 }, false))).toBe(
      '(kept by a running floodgate run; none is running)',
    );
    expect(title(renderTop(frame({ daemon: status }), { columns: 100, rows: 40 }, false))).toBe(
      '(this floodgate run does not answer the events request: an older version?)',
    );
  });

  it.each([
    [40, 10],
    [80, 24],
    [120, 40],
    [200, 60],
  ])('fits a %ix%i terminal, and says what it cut', (columns, rows) => {
    const bans = Array.from({ length: 100 }, (_, i) => ban(`198.18.0.${i}`, 60_000 * i));
    const lines = renderTop(frame({ daemon: status, bans, events: [] }), { columns, rows }, false);
    expect(lines.length).toBeLessThanOrEqual(rows);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(columns);
    if (rows >= 24) expect(lines.some((l) => /^… \d+ more$/.test(l))).toBe(true);
  });

  it('prints every line when printed once to a pipe', () => {
    const bans = Array.from({ length: 100 }, (_, i) => ban(`198.18.0.${i}`, 60_000));
    const lines = renderTop(frame({ bans }), { columns: 120, rows: Infinity }, false);
    expect(lines.filter((l) => l.startsWith('198.18.0.'))).toHaveLength(100);
  });

  it('colours only when asked, and honours NO_COLOR', () => {
    expect(renderTop(frame(), { columns: 100, rows: 40 }, false).join('\n')).not.toContain('\x1b');
    const coloured = renderTop(frame(), { columns: 100, rows: 40 }, true);
    expect(coloured.find((l) => l.includes(ATTACKER))).toMatch(/^\x1b\[1;31m198\.51\.100\.66 .*\x1b\[0m$/);
    expect(useColor(true, {})).toBe(true);
    expect(useColor(true, { NO_COLOR: '1' })).toBe(false);
    expect(useColor(true, { NO_COLOR: '' })).toBe(true);
    expect(useColor(false, {})).toBe(false);
  });

  it.each([
    [-5, 'expiring'],
    [59_999, '59s'],
    [598_000, '9m 58s'],
    [3_720_000, '1h 02m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d 4h'],
  ])('time left %i ms reads %s', (ms, text) => {
    expect(timeLeft(ms)).toBe(text);
  });
});

describe('floodgate top: not a terminal', () => {
  it('refuses to draw a live screen into a pipe, and says to use --once', async () => {
    const { topCommand } = await import('../../src/cli/top.js');
    const isTTY = process.stdout.isTTY;
    process.stdout.isTTY = false as true;
    try {
      await expect(
        topCommand({ interval: 1000, top: 5, stateDir: '/nonexistent/floodgate-top' }),
      ).rejects.toMatchObject({
        exitCode: 2,
        message: expect.stringContaining('use --once to print a single frame'),
      });
    } finally {
      process.stdout.isTTY = isTTY;
    }
  });
});
