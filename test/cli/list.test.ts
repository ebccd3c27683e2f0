// `floodgate list` prints what a ban's reason says, never what it would do to a terminal: one row per
// ban whatever the text holds, and a table of any size.
import { describe, expect, it } from 'vitest';
import { banTable, printable } from '../../src/cli/list.js';
import type { ListedBan } from '../../src/daemon/protocol.js';

const ban = (target: string, reason: string | null): ListedBan => ({
  target,
  rule: 'manual',
  reason,
  count: 0,
  createdAt: '2026-12-01T10:00:00.000Z',
  expiresAt: '2026-12-01T11:00:00.000Z',
  dryRun: false,
  source: 'local',
});

describe('list table', () => {
  it('keeps a reason with a newline and escape sequences on its own row, every control character shown escaped', () => {
    const forged =
      'ok\n203.0.113.66  manual  0  2026-12-01T10:00:00.000Z  2026-12-01T11:00:00.000Z  enforced\x1b[31m\x1b]0;x\x07\u009b2J\u202egnp.exe\\n';
    const lines = banTable([ban('198.51.100.30', forged), ban('198.51.100.31', null)]);
    expect(lines).toHaveLength(3);
    expect(lines.join('')).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
    expect(lines[1]).toContain('ok\\n203.0.113.66');
    expect(lines[1]).toContain('enforced\\e[31m\\e]0;x\\u0007\\u009b2J\\u202egnp.exe\\\\n');
    expect(lines[2]!.startsWith('198.51.100.31')).toBe(true);
  });

  it('leaves ordinary text, accents included, as it is', () => {
    expect(printable('flood from the café (ticket #12)')).toBe('flood from the café (ticket #12)');
  });

  it('prints 200,000 bans (Math.max over a spread column overflowed the stack at about 125k)', () => {
    const bans = Array.from({ length: 200_000 }, (_, i) =>
      ban(`198.18.${(i >> 8) & 255}.${i & 255}`, i === 199_999 ? 'the longest reason of all' : 'x'),
    );
    const lines = banTable(bans);
    expect(lines).toHaveLength(200_001);
    expect(lines[0]).toMatch(/^TARGET +RULE +COUNT +CREATED +EXPIRES +MODE +SOURCE +REASON$/);
    // Every row aligned to the widest cell, the last row's included.
    expect(lines[1]!.indexOf('2026')).toBe(lines[200_000]!.indexOf('2026'));
  });
});
