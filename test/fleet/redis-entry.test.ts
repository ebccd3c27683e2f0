// The Redis stream entry format: what a host writes, and what it refuses to apply.
import { describe, expect, it } from 'vitest';
import { FORMAT, decodeEntry, encodeBan, encodeUnban, ownBanPrefix } from '../../src/fleet/redis-entry.js';

describe('Redis stream entries', () => {
  it('decodes what it encodes, and a host’s bans start with its own prefix', () => {
    const ban = encodeBan('web-a', '198.51.100.0/24', 'syn', 1_800_000_000_123);
    expect(ban).toBe('["ban","web-a","198.51.100.0/24","syn",1800000000123]');
    expect(decodeEntry([FORMAT, ban])).toEqual({
      op: 'ban',
      host: 'web-a',
      target: '198.51.100.0/24',
      rule: 'syn',
      expiresAt: 1_800_000_000_123,
    });
    expect(decodeEntry([FORMAT, encodeUnban('web-b', '2001:db8::/64')])).toEqual({
      op: 'unban',
      host: 'web-b',
      target: '2001:db8::/64',
    });
    expect(ban.startsWith(ownBanPrefix('web-a'))).toBe(true);
    // A host whose name another's starts with is not taken for it.
    expect(encodeBan('web-a2', '192.0.2.1', 'syn', 1).startsWith(ownBanPrefix('web-a'))).toBe(false);
    expect(encodeUnban('web-a', '192.0.2.1').startsWith(ownBanPrefix('web-a'))).toBe(false);
  });

  it('refuses another format, and anything this one cannot hold, saying why', () => {
    const old = ['op', 'ban', 'target', '192.0.2.1', 'host', 'web-c', 'rule', 'r', 'expiresAt', '1800000000000'];
    expect(decodeEntry(old)).toBe('not in format fg1 (field(s) op, target, host, rule, expiresAt)');
    expect(decodeEntry(['fg2', '["ban"]'])).toBe('not in format fg1 (field(s) fg2)');
    expect(decodeEntry([FORMAT, '["ban","web-c","192.0.2.1","r",1800000000000]', 'x', 'y'])).toMatch(/^not in format/);
    expect(decodeEntry([FORMAT, '{"op":"ban"'])).toBe('fg1: not JSON');
    expect(decodeEntry([FORMAT, '{"op":"ban"}'])).toBe('fg1: not a list');
    for (const value of [
      ['ban', 'web-c', '192.0.2.1', 'r', '1800000000000'],
      ['ban', 'web-c', '192.0.2.1', 'r', 1.5],
      ['ban', 'web-c', '192.0.2.1', 'r', -1],
      ['ban', 'web-c', '192.0.2.1', 7, 1_800_000_000_000],
    ])
      expect(decodeEntry([FORMAT, JSON.stringify(value)])).toBe('fg1: a ban without a rule or a valid expiry');
    expect(decodeEntry([FORMAT, '["ban","","192.0.2.1","r",1800000000000]'])).toBe('fg1: no host or target');
    expect(decodeEntry([FORMAT, '["unban","web-c",null]'])).toBe('fg1: no host or target');
    expect(decodeEntry([FORMAT, '["ban","web-c","192.0.2.1","r"]'])).toBe('fg1: not a ban or an unban');
    expect(decodeEntry([FORMAT, '["unban","web-c","192.0.2.1","extra"]'])).toBe('fg1: not a ban or an unban');
    expect(decodeEntry([FORMAT, '["expire","web-c","192.0.2.1"]'])).toBe('fg1: not a ban or an unban');
  });
});
