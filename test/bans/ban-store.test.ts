// The ban store on disk and in memory: what survives a restart, atomic saves, grace and suppression.
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BanStore, banSource } from '../../src/bans/ban-store.js';
import { ConflictError, UsageError } from '../../src/errors.js';
import { writeFileAtomic } from '../../src/bans/state-file.js';
import { parseCidr } from '../../src/net/ip.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const LIMITS = { ttl: 10 * MINUTE, maxTtl: 60 * MINUTE };
const cidr = (text: string) => parseCidr(text)!;

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-store-'));
  file = join(dir, 'bans.json');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('BanStore persistence', () => {
  it('keeps bans, offenders, grace, refusals and the last scan across save and load', () => {
    const store = new BanStore(file, LIMITS);
    store.add(
      { target: '198.51.100.7', rule: 'per_source', reason: 'SYN flood', count: 212, createdAt: T0 },
      20 * MINUTE,
    );
    store.add({ target: '2001:db8::/64', rule: 'manual', count: 0, createdAt: T0 + 1 }, 10 * MINUTE);
    store.add({ target: '192.0.2.9', rule: 'manual', count: 0, createdAt: T0 - 5 * MINUTE }, 10 * MINUTE);
    store.remove('192.0.2.9'); // an offender without an active ban
    store.setGrace('192.0.2.9', T0 + 3 * MINUTE);
    store.refused = 3;
    store.lastScan = { at: T0, durationMs: 12, sockets: 4000 };
    store.save();

    const loaded = BanStore.load(file, LIMITS);
    expect(loaded.all()).toEqual(store.all());
    expect(loaded.get('198.51.100.7')).toEqual({
      target: '198.51.100.7',
      rule: 'per_source',
      reason: 'SYN flood',
      count: 212,
      createdAt: T0,
      ttl: 20 * MINUTE,
      expiresAt: T0 + 20 * MINUTE,
    });
    expect(loaded.inGrace('192.0.2.9', T0 + 3 * MINUTE - 1)).toBe(true);
    expect(loaded.refused).toBe(3);
    expect(loaded.lastScan).toEqual({ at: T0, durationMs: 12, sockets: 4000 });
    // The offender memory survived: the next ban of 192.0.2.9 is twice the last one.
    expect(loaded.ttlFor('192.0.2.9', T0)).toBe(20 * MINUTE);
    expect(loaded.ttlFor('198.51.100.7', T0 + MINUTE)).toBe(40 * MINUTE);
  });

  it('writes thousands of bans in pieces as one JSON document, and loads them all back', () => {
    const store = new BanStore(file, LIMITS);
    for (let i = 0; i < 2_500; i++)
      store.add({ target: `198.18.${i >> 8}.${i & 255}`, rule: 'manual', count: 0, createdAt: T0 + i }, 10 * MINUTE);
    for (let i = 0; i < 1_001; i++) store.setGrace(`198.19.${i >> 8}.${i & 255}`, T0 + MINUTE);
    store.lastScan = { at: T0, durationMs: 3, sockets: 10 };
    store.save();

    const json = JSON.parse(readFileSync(file, 'utf8')) as {
      version: number;
      bans: unknown[];
      offenders: unknown[];
      grace: unknown[];
      refused: number;
      lastScan: unknown;
    };
    expect(json.version).toBe(2);
    expect([json.bans.length, json.offenders.length, json.grace.length, json.refused]).toEqual([
      2_500, 2_500, 1_001, 0,
    ]);
    expect(json.bans[2_499]).toEqual({
      target: '198.18.9.195',
      rule: 'manual',
      count: 0,
      createdAt: T0 + 2_499,
      expiresAt: T0 + 2_499 + 10 * MINUTE,
      ttl: 10 * MINUTE,
    });
    const loaded = BanStore.load(file, LIMITS);
    expect(loaded.all()).toEqual(store.all());
    expect(loaded.inGrace('198.19.3.232', T0)).toBe(true);
    expect(loaded.lastScan).toEqual(store.lastScan);
  });

  it('keeps the absolute expiry: a ban loaded later does not get a fresh ttl', () => {
    const store = new BanStore(file, LIMITS);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.save();
    const loaded = BanStore.load(file, LIMITS);
    expect(loaded.get('198.51.100.7')!.expiresAt).toBe(T0 + 10 * MINUTE);
    expect(loaded.expired(T0 + 10 * MINUTE - 1)).toEqual([]);
    expect(loaded.expired(T0 + 10 * MINUTE).map((b) => b.target)).toEqual(['198.51.100.7']);
  });

  it('starts empty when there is no state file yet', () => {
    const store = BanStore.load(join(dir, 'absent.json'), LIMITS);
    expect(store.size).toBe(0);
    expect(store.refused).toBe(0);
  });

  it('leaves no temporary file behind, and the state file is private', () => {
    const store = new BanStore(file, LIMITS);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.save();
    store.add({ target: '198.51.100.8', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.save();
    expect(readdirSync(dir)).toEqual(['bans.json']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(BanStore.load(file, LIMITS).size).toBe(2);
  });

  it('writeFileAtomic replaces the whole content and leaves only the target file', () => {
    writeFileAtomic(file, 'a much longer first content');
    writeFileAtomic(file, 'short');
    expect(readdirSync(dir)).toEqual(['bans.json']);
    expect(readFileSync(file, 'utf8')).toBe('short');
  });

  it('saveIfChanged writes after a ban change at once, and counters alone only when they are due', () => {
    const store = new BanStore(file, LIMITS);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.saveIfChanged();
    expect(existsSync(file)).toBe(true);
    unlinkSync(file);
    store.saveIfChanged();
    expect(existsSync(file)).toBe(false);
    // A refusal or a scan is a counter: not worth rewriting every ban on each scan...
    store.refused++;
    store.touch();
    store.saveIfChanged();
    expect(existsSync(file)).toBe(false);
    // ...but written once its interval has passed, and with the next ban change in any case.
    store.saveIfChanged(0);
    expect(BanStore.load(file, LIMITS).refused).toBe(1);
  });

  it('a store without a file only lives in memory', () => {
    const store = new BanStore(undefined, LIMITS);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.save();
    store.saveIfChanged();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('BanStore repeat offenders', () => {
  it('doubles the ttl of a target banned again within max_ttl, capped at max_ttl', () => {
    const store = new BanStore(undefined, LIMITS);
    expect(store.ttlFor('198.51.100.7', T0)).toBe(10 * MINUTE);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, 40 * MINUTE);
    expect(store.ttlFor('198.51.100.7', T0 + 60 * MINUTE)).toBe(60 * MINUTE);
    expect(store.ttlFor('198.51.100.7', T0 + 60 * MINUTE + 1)).toBe(10 * MINUTE);
  });

  it('never gives less than the requested base, nor more than max_ttl', () => {
    const store = new BanStore(undefined, LIMITS);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, MINUTE);
    expect(store.ttlFor('198.51.100.7', T0, 30 * MINUTE)).toBe(30 * MINUTE);
    expect(store.ttlFor('198.51.100.8', T0, 600 * MINUTE)).toBe(60 * MINUTE);
  });
});

describe('BanStore grace and suppression', () => {
  it('grace suppresses a target until it ends, and a new ban ends it', () => {
    const store = new BanStore(undefined, LIMITS);
    store.setGrace('198.51.100.7', T0 + MINUTE);
    expect(store.inGrace('198.51.100.7', T0)).toBe(true);
    expect(store.inGrace('198.51.100.7', T0 + MINUTE)).toBe(false);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    expect(store.inGrace('198.51.100.7', T0)).toBe(false);
  });

  it('suppressed() covers active bans and targets in grace, networks by prefix', () => {
    const store = new BanStore(undefined, LIMITS);
    store.add({ target: '203.0.113.0/24', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.add({ target: '2001:db8::7', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.setGrace('198.51.100.7', T0 + MINUTE);
    const set = store.suppressed(T0);
    expect(set.covers(cidr('203.0.113.99'))).toBe(true);
    expect(set.covers(cidr('2001:db8::7'))).toBe(true);
    expect(set.covers(cidr('198.51.100.7'))).toBe(true);
    expect(set.covers(cidr('198.51.100.8'))).toBe(false);
    expect(set.covers(cidr('2001:db8::8'))).toBe(false);
  });

  it('suppressed() follows changes: new bans appear, lifted bans and ended grace disappear', () => {
    const store = new BanStore(undefined, LIMITS);
    store.setGrace('198.51.100.7', T0 + MINUTE);
    expect(store.suppressed(T0).covers(cidr('198.51.100.7'))).toBe(true);
    store.add({ target: '192.0.2.5', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    expect(store.suppressed(T0).covers(cidr('192.0.2.5'))).toBe(true);
    store.remove('192.0.2.5');
    expect(store.suppressed(T0).covers(cidr('192.0.2.5'))).toBe(false);
    expect(store.suppressed(T0 + MINUTE).covers(cidr('198.51.100.7'))).toBe(false);
  });

  it('suppressed() keeps a target while a ban or a grace still holds it, and a network apart from the addresses in it', () => {
    const store = new BanStore(undefined, LIMITS);
    const ban = (target: string) => store.add({ target, rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    const covered = (text: string) => store.suppressed(T0).covers(cidr(text));
    ban('198.51.100.0/24');
    ban('198.51.100.7');
    store.remove('198.51.100.0/24');
    expect([covered('198.51.100.7'), covered('198.51.100.8')]).toEqual([true, false]);
    // lifted with a grace period: still suppressed until the grace ends
    store.remove('198.51.100.7');
    store.setGrace('198.51.100.7', T0 + MINUTE);
    expect(covered('198.51.100.7')).toBe(true);
    // banned again during its grace, then lifted without one: no longer suppressed
    ban('198.51.100.7');
    store.remove('198.51.100.7');
    expect(covered('198.51.100.7')).toBe(false);
    // a flush clears the bans and keeps the grace periods
    ban('203.0.113.9');
    store.setGrace('192.0.2.44', T0 + MINUTE);
    store.clear();
    expect([covered('203.0.113.9'), covered('192.0.2.44')]).toEqual([false, true]);
    expect(store.suppressed(T0).size).toBe(1);
  });

  it('an ended grace is dropped from the saved state', () => {
    const store = new BanStore(file, LIMITS);
    store.setGrace('198.51.100.7', T0 + MINUTE);
    store.suppressed(T0 + MINUTE);
    store.saveIfChanged();
    expect(BanStore.load(file, LIMITS).inGrace('198.51.100.7', T0)).toBe(false);
  });
});

describe('BanStore listing', () => {
  it('lists bans oldest first and turns them back into targets', () => {
    const store = new BanStore(undefined, LIMITS);
    store.add({ target: '2001:db8::7', rule: 'manual', count: 0, createdAt: T0 + 2 }, 10 * MINUTE);
    store.add({ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    store.add({ target: '198.51.100.0/24', rule: 'manual', count: 0, createdAt: T0 }, 10 * MINUTE);
    expect(store.all().map((b) => b.target)).toEqual(['198.51.100.0/24', '198.51.100.7', '2001:db8::7']);
    expect(store.targets()).toEqual([cidr('2001:db8::7'), cidr('198.51.100.7'), cidr('198.51.100.0/24')]);
    expect(store.clear()).toHaveLength(3);
    expect(store.size).toBe(0);
  });
});

describe('BanStore.load checks the file before trusting it', () => {
  const ban = (target: unknown, extra: Record<string, unknown> = {}) => ({
    target,
    rule: 'manual',
    count: 0,
    createdAt: T0,
    ttl: 10 * MINUTE,
    expiresAt: T0 + 10 * MINUTE,
    ...extra,
  });
  const store = (bans: unknown, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ version: 1, bans, offenders: [], grace: [], refused: 0, ...extra });
  const NOW = Date.UTC(2026, 0, 15, 13, 0, 0);
  const aside = () => `${file}.corrupt-2026-01-15T13-00-00-000Z`;

  it('without repair (list, status), refuses an unusable file, naming it and what happens next', () => {
    writeFileSync(file, '{"version":1,"bans":[');
    expect(() => BanStore.load(file, LIMITS)).toThrow(UsageError);
    expect(() => BanStore.load(file, LIMITS)).toThrow(`the ban store ${file} cannot be used: it is not valid JSON`);
    expect(readdirSync(dir)).toEqual(['bans.json']);
  });

  it('with repair (under the lock), sets an unusable file aside and starts empty', () => {
    writeFileSync(file, '');
    const loaded = BanStore.load(file, LIMITS, { repair: true, now: NOW });
    expect(loaded.size).toBe(0);
    expect(loaded.loadReport).toEqual({
      problems: [expect.stringMatching(/^it is not valid JSON/)],
      aside: aside(),
      discarded: true,
    });
    expect(readdirSync(dir)).toEqual([aside().slice(dir.length + 1)]);
  });

  it.each([
    ['null', 'null', /it holds null, not a ban store/],
    ['a list', '[]', /it holds \[\], not a ban store/],
    ['no version', '{"bans":[]}', /its version is undefined, not 2 \(or 1\)/],
    ['a string version', '{"version":"1","bans":[]}', /its version is "1", not 2 \(or 1\)/],
  ])('an unusable store: %s', (_, text, why) => {
    writeFileSync(file, text);
    expect(() => BanStore.load(file, LIMITS)).toThrow(why);
    expect(BanStore.load(file, LIMITS, { repair: true, now: NOW }).loadReport?.discarded).toBe(true);
  });

  it('refuses a store written by a newer floodgate, even with repair, and leaves it as it is', () => {
    const text = JSON.stringify({ version: 3, bans: [ban('198.51.100.7')] });
    writeFileSync(file, text);
    for (const repair of [false, true]) {
      expect(() => BanStore.load(file, LIMITS, { repair })).toThrow(ConflictError);
      expect(() => BanStore.load(file, LIMITS, { repair })).toThrow(
        `the ban store ${file} cannot be read: it is version 3, written by a newer floodgate (this one reads version 2)`,
      );
    }
    expect(readdirSync(dir)).toEqual(['bans.json']);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('leaves out every entry that fails, keeps the sound ones, and keeps the original aside', () => {
    const text = store(
      [
        ban('198.51.100.7'),
        ban('0.0.0.0/0'),
        ban('::/0'),
        ban('198.51.100.07'),
        ban('198.51.100.9/24'),
        ban('2001:DB8::1'),
        ban('10.0.0.0/7', { rule: 'per_network' }),
        ban('198.51.100.8', { expiresAt: undefined }),
        ban('198.51.100.10', { expiresAt: 9e15 }),
        ban('198.51.100.11', { reason: { x: 1 } }),
        ban('198.51.100.12', { count: -1 }),
        ban('198.51.100.13', { ttl: 'abc' }),
        ban(42),
        null,
        7,
        ban('10.0.0.0/8', { rule: 'manual' }),
      ],
      {
        grace: { '198.51.100.20': T0 },
        offenders: [
          ['198.51.100.21', { lastTtl: MINUTE, lastBanAt: T0 }],
          ['::/0', { lastTtl: MINUTE, lastBanAt: T0 }],
        ],
        refused: 'many',
      },
    );
    writeFileSync(file, text);
    const loaded = BanStore.load(file, LIMITS, { repair: true, now: NOW });
    expect(loaded.all().map((b) => b.target)).toEqual(['10.0.0.0/8', '198.51.100.7']);
    expect(loaded.loadReport?.discarded).toBe(false);
    expect(loaded.loadReport?.aside).toBe(aside());
    expect(loaded.loadReport?.problems).toEqual([
      'bans[1]: target 0.0.0.0/0 covers every address (a /0 ban would cut this host off)',
      'bans[2]: target ::/0 covers every address (a /0 ban would cut this host off)',
      'bans[3]: target "198.51.100.07" is not an address or network',
      'bans[4]: target "198.51.100.9/24" is not in canonical form (198.51.100.0/24)',
      'bans[5]: target "2001:DB8::1" is not in canonical form (2001:db8::1)',
      'bans[6]: target 10.0.0.0/7 is wider than /8, which no detector rule bans (only a manual ban with --force may be)',
      'bans[7]: expiresAt undefined is not a time',
      'bans[8]: expiresAt 9000000000000000 is not a time',
      'bans[9]: reason {"x":1} is not text',
      'bans[10]: count -1 is not a whole number >= 0',
      'bans[11]: ttl "abc" is not a duration',
      'bans[12]: target 42 is not a string',
      'bans[13]: null is not a ban',
      'bans[14]: 7 is not a ban',
      'offenders[1]: target ::/0 covers every address (a /0 ban would cut this host off)',
      'grace: {"198.51.100.20":1768478400000} is not a list',
      'refused: "many" is not a whole number >= 0',
    ]);
    expect(loaded.refused).toBe(0);
    expect(loaded.ttlFor('198.51.100.21', T0 + MINUTE)).toBe(10 * MINUTE);
    // The original is kept whole; the store file is rewritten without what was left out.
    expect(readFileSync(aside(), 'utf8')).toBe(text);
    loaded.saveIfChanged();
    const again = BanStore.load(file, LIMITS);
    expect(again.loadReport).toBeUndefined();
    expect(again.all().map((b) => b.target)).toEqual(['10.0.0.0/8', '198.51.100.7']);
  });

  it('without repair, skips bad entries in memory and writes nothing', () => {
    writeFileSync(file, store([ban('198.51.100.7'), ban('0.0.0.0/0')]));
    const loaded = BanStore.load(file, LIMITS);
    expect(loaded.all().map((b) => b.target)).toEqual(['198.51.100.7']);
    expect(loaded.loadReport?.problems).toHaveLength(1);
    expect(readdirSync(dir)).toEqual(['bans.json']);
  });

  // Each of these made `ban`, `list` or `status` exit 70 (an internal error) before the check.
  it.each([
    ['truncated', '{"version":1,"bans":[{"target":"198.51.100.7"'],
    ['empty', ''],
    ['null', 'null'],
    ['a ban that is null', store([null])],
    ['a ban that is a number', store([5])],
    ['a non-canonical target', store([ban('198.051.100.7')])],
    ['grace as an object', store([], { grace: { a: 1 } })],
    ['a reason that is an object', store([ban('198.51.100.7', { reason: {} })])],
    ['an expiry past year 275760', store([ban('198.51.100.7', { expiresAt: 8.7e15 })])],
    ['bans as an object', store({ '198.51.100.7': ban('198.51.100.7') })],
    ['offenders as a string', store([], { offenders: 'x' })],
    ['lastScan as a number', store([], { lastScan: 5 })],
    ['createdAt as a string', store([ban('198.51.100.7', { createdAt: '2026-01-01' })])],
  ])('a store with %s loads as sound entries only, and every reader works on it', (_, text) => {
    writeFileSync(file, text);
    const loaded = BanStore.load(file, LIMITS, { repair: true, now: NOW });
    expect(loaded.loadReport).toBeDefined();
    for (const b of loaded.all()) expect(new Date(b.expiresAt).toISOString()).toMatch(/^2026-/);
    loaded.suppressed(T0);
    loaded.expired(T0);
    loaded.saveIfChanged(0);
    expect(BanStore.load(file, LIMITS).loadReport).toBeUndefined();
  });
});

describe('BanStore fleet part and outbox (version 2)', () => {
  const fleet = (expiresAt: number, decisionId = '7') => ({
    host: 'web-2',
    origin: 'floodgate',
    decisionId,
    expiresAt,
  });

  it('reads a version 1 store as all-local bans with an empty outbox, and writes version 2', () => {
    const v1 = {
      version: 1,
      bans: [{ target: '198.51.100.7', rule: 'manual', count: 0, createdAt: T0, expiresAt: T0 + MINUTE, ttl: MINUTE }],
      offenders: [],
      grace: [],
      refused: 2,
    };
    writeFileSync(file, JSON.stringify(v1));
    const store = BanStore.load(file, LIMITS, { repair: true });
    expect(store.loadReport).toBeUndefined();
    expect(store.get('198.51.100.7')).toEqual(v1.bans[0]);
    expect(banSource(store.get('198.51.100.7')!)).toBe('local');
    expect(store.outbox).toEqual([]);
    store.enqueue({ op: 'ban', target: '198.51.100.7', rule: 'manual', expiresAt: T0 + MINUTE });
    store.save();
    const json = JSON.parse(readFileSync(file, 'utf8')) as { version: number; outbox: unknown[]; refused: number };
    expect(json.version).toBe(2);
    expect(json.refused).toBe(2);
    expect(json.outbox).toEqual([{ op: 'ban', target: '198.51.100.7', rule: 'manual', expiresAt: T0 + MINUTE }]);
  });

  it('keeps fleet bans, their source and the outbox across save and load; a bad outbox entry is left out', () => {
    const store = new BanStore(file, LIMITS);
    expect(store.setFleet('203.0.113.0/24', fleet(T0 + 5 * MINUTE), 'syn-flood', T0)).toBe('added');
    store.enqueue({ op: 'unban', target: '198.51.100.9' });
    store.fleetCursor = '1700000000000-3';
    store.save();
    const loaded = BanStore.load(file, LIMITS);
    expect(loaded.fleetCursor).toBe('1700000000000-3');
    expect(loaded.get('203.0.113.0/24')).toEqual({
      target: '203.0.113.0/24',
      rule: 'syn-flood',
      count: 0,
      createdAt: T0,
      ttl: 5 * MINUTE,
      expiresAt: T0 + 5 * MINUTE,
      fleet: fleet(T0 + 5 * MINUTE),
    });
    expect(banSource(loaded.get('203.0.113.0/24')!)).toBe('fleet:web-2');
    expect(loaded.outbox).toEqual([{ op: 'unban', target: '198.51.100.9' }]);
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(
      file,
      JSON.stringify({
        ...json,
        outbox: [
          { op: 'ban', target: '198.51.100.7/32', rule: 'x', expiresAt: T0 },
          { op: 'unban', target: '198.51.100.9' },
        ],
      }),
    );
    const partly = BanStore.load(file, LIMITS);
    expect(partly.outbox).toEqual([{ op: 'unban', target: '198.51.100.9' }]);
    expect(partly.loadReport?.problems).toEqual([
      'outbox[0]: target "198.51.100.7/32" is not in canonical form (198.51.100.7)',
    ]);
  });

  it('a fleet decision extends a shorter local ban, and its deletion lifts only what the fleet added; no repeat-offender doubling', () => {
    const store = new BanStore(file, LIMITS);
    store.add({ target: '198.51.100.7', rule: 'per_source', count: 50, createdAt: T0 }, MINUTE);
    expect(store.setFleet('198.51.100.7', fleet(T0 + 10 * MINUTE), 'syn-flood', T0)).toBe('extended');
    expect(store.get('198.51.100.7')).toMatchObject({
      expiresAt: T0 + 10 * MINUTE,
      localExpiresAt: T0 + MINUTE,
      rule: 'per_source',
    });
    expect(banSource(store.get('198.51.100.7')!)).toBe('local');
    expect(store.liftFleet('198.51.100.7')).toMatchObject({ expiresAt: T0 + MINUTE });
    expect(store.get('198.51.100.7')!.fleet).toBeUndefined();
    // A shorter fleet decision is only recorded.
    expect(store.setFleet('198.51.100.7', fleet(T0 + 30_000), 'syn-flood', T0)).toBe('recorded');
    expect(store.get('198.51.100.7')!.expiresAt).toBe(T0 + MINUTE);
    // A fleet-only ban goes when its decision goes, and leaves no offender record.
    store.setFleet('198.51.100.8', fleet(T0 + 10 * MINUTE), 'syn-flood', T0);
    expect(store.liftFleet('198.51.100.8')).toBeUndefined();
    expect(store.get('198.51.100.8')).toBeUndefined();
    expect(store.ttlFor('198.51.100.8', T0 + MINUTE)).toBe(LIMITS.ttl);
    expect(store.liftFleet('198.51.100.99')).toBeNull();
  });

  it('a fleet ban is suppressed for the detector, which then never bans (nor pushes) it again', () => {
    const store = new BanStore(undefined, LIMITS);
    store.setFleet('203.0.113.0/24', fleet(T0 + 5 * MINUTE), 'syn-flood', T0);
    expect(store.suppressed(T0).covers(parseCidr('203.0.113.9')!)).toBe(true);
    store.liftFleet('203.0.113.0/24');
    expect(store.suppressed(T0).covers(parseCidr('203.0.113.9')!)).toBe(false);
  });

  it('a fleet ban of the origin cscli shows as cscli', () => {
    const store = new BanStore(undefined, LIMITS);
    store.setFleet(
      '192.0.2.1',
      { host: '', origin: 'cscli', decisionId: '3', expiresAt: T0 + MINUTE },
      "manual 'ban' from 'localhost'",
      T0,
    );
    expect(banSource(store.get('192.0.2.1')!)).toBe('cscli');
  });
});
