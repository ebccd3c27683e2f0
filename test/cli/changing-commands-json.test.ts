// `ban`, `unban` and `flush` with --json: one JSON document on stdout saying what was done, with the
// exit codes and the stderr of the text output; `unban --all`, which is `flush`; and the note on a
// target written with host bits, on stderr and in the document.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { banCommand } from '../../src/cli/ban.js';
import { flushCommand } from '../../src/cli/flush.js';
import { listCommand } from '../../src/cli/list.js';
import { printTargetNotes } from '../../src/cli/target-notes.js';
import { unbanCommand } from '../../src/cli/unban.js';
import { type ControlServer, DEFAULT_CONTROL_LIMITS, serveControl } from '../../src/daemon/control-socket.js';
import type { ListedBan, Request } from '../../src/daemon/protocol.js';
import { UsageError } from '../../src/errors.js';
import { captureOutput } from '../support/captured-output.js';

const out = captureOutput();

let dir: string;
let stateDir: string;
/** A direct command in dry-run with the embedded default policy (ban.ttl 10m), no SSH session. */
let options: { stateDir: string; policy: string; dryRun: true };
const noSsh = { env: {} };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-json-'));
  stateDir = join(dir, 'state');
  options = { stateDir, policy: 'policies/default.yaml', dryRun: true };
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a command and returns what it printed on stdout (parsed: the whole of stdout is one document). */
async function json(run: () => Promise<void>): Promise<Record<string, unknown>> {
  out.stdout = '';
  await run();
  return JSON.parse(out.stdout) as Record<string, unknown>;
}

async function listed(): Promise<string[]> {
  const bans = (await json(() => listCommand({ ...options, json: true }))) as unknown as ListedBan[];
  return bans.map((b) => b.target).sort();
}

describe('ban --json', () => {
  it('says per target banned, already banned or refused (with why), the expiry, the mode and the state directory', async () => {
    const first = await json(() => banCommand(['203.0.113.7'], { ...options, json: true }, noSsh));
    expect(process.exitCode).toBeUndefined();
    expect(first).toEqual({
      stateDir,
      mode: 'dry-run',
      via: 'direct',
      ttl: null,
      counts: { banned: 1, already: 0, refused: 0 },
      results: [{ target: '203.0.113.7', status: 'banned', expiresAt: expect.any(String) }],
    });
    // No --ttl: the policy's 10m.
    const expiresAt = Date.parse((first.results as { expiresAt: string }[])[0]!.expiresAt);
    expect(expiresAt - Date.now()).toBeGreaterThan(10 * 60_000 - 10_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(10 * 60_000);

    const second = await json(() =>
      banCommand(['2001:DB8::0:7', '203.0.113.7', '127.0.0.1'], { ...options, ttl: 3_600_000, json: true }, noSsh),
    );
    expect(second).toMatchObject({ ttl: '1h', counts: { banned: 1, already: 1, refused: 1 } });
    expect(second.results).toEqual([
      { target: '2001:db8::7', status: 'banned', expiresAt: expect.any(String) },
      // Already banned: its expiry stays the first ban's, not the new --ttl.
      { target: '203.0.113.7', status: 'already', expiresAt: new Date(expiresAt).toISOString() },
      {
        target: '127.0.0.1',
        status: 'refused',
        reason: 'it is allowlisted, loopback or one of this host’s own addresses',
      },
    ]);
    const banned = Date.parse((second.results as { expiresAt: string }[])[0]!.expiresAt);
    expect(banned - Date.now()).toBeGreaterThan(3_600_000 - 10_000);
    // A refusal exits 1, as the text output does, and is said once, in the document.
    expect(process.exitCode).toBe(1);
    expect(out.stderr).toBe('');
    expect(await listed()).toEqual(['2001:db8::7', '203.0.113.7']);
  });

  it('prints the same counts as the text summary', async () => {
    await banCommand(['203.0.113.7', '127.0.0.1'], options, noSsh);
    expect(out.stdout).toContain('1 banned, 0 already banned, 1 refused — dry-run');
    expect(process.exitCode).toBe(1);
    process.exitCode = undefined;
    const doc = await json(() => banCommand(['203.0.113.7', '127.0.0.1'], { ...options, json: true }, noSsh));
    expect(doc.counts).toEqual({ banned: 0, already: 1, refused: 1 });
    expect(process.exitCode).toBe(1);
  });

  it('prints nothing on stdout for a usage error: the error is thrown for stderr, exit 2', async () => {
    const bad = banCommand(['203.0.113.7', '1.2.3.4/33'], { ...options, json: true }, noSsh);
    await expect(bad).rejects.toThrow(UsageError);
    await expect(bad).rejects.toThrow('"1.2.3.4/33" is not an IP address or network');
    expect(out.stdout).toBe('');
  });
});

describe('unban --json', () => {
  it('says per target lifted or not banned, the grace, the mode and the state directory', async () => {
    await banCommand(['203.0.113.7'], options, noSsh);
    const doc = await json(() =>
      unbanCommand(['203.0.113.7', '198.51.100.9'], { ...options, grace: 5 * 60_000, json: true }),
    );
    expect(doc).toEqual({
      stateDir,
      mode: 'dry-run',
      via: 'direct',
      grace: '5m',
      counts: { lifted: 1, notBanned: 1 },
      results: [
        { target: '203.0.113.7', status: 'lifted' },
        { target: '198.51.100.9', status: 'not-banned' },
      ],
    });
    expect(process.exitCode).toBeUndefined();
    expect(await listed()).toEqual([]);
    const again = await json(() => unbanCommand(['203.0.113.7'], { ...options, json: true }));
    expect(again).toMatchObject({ grace: null, counts: { lifted: 0, notBanned: 1 } });
  });
});

describe('a target written with host bits', () => {
  const note = (verb: string) => `203.0.113.10/24 is the network 203.0.113.0/24; ${verb} that`;

  it('ban says once on stderr which network it bans, and bans that', async () => {
    await banCommand(['203.0.113.10/24', '198.51.100.7', '203.0.113.10/24'], options, noSsh);
    expect(out.stderr).toBe(`floodgate: note: ${note('banning')}\n`);
    expect(out.stdout).toMatch(
      /^banned 203\.0\.113\.0\/24 until .*\nbanned 198\.51\.100\.7 until .*\nalready banned 203\.0\.113\.0\/24 until /,
    );
    expect(process.exitCode).toBeUndefined();
    expect(await listed()).toEqual(['198.51.100.7', '203.0.113.0/24']);
  });

  it('says nothing of a network written exactly, or of an address', async () => {
    await banCommand(['203.0.113.0/24', '2001:DB8::/64', '198.51.100.7'], options, noSsh);
    expect(out.stderr).toBe('');
  });

  it('ban --json: the note is in that target’s result, and on stderr, not beside the document', async () => {
    const list = join(dir, 'feed.txt');
    writeFileSync(list, '# feed\n198.51.100.9\n2001:db8::7/64\n');
    const doc = await json(() =>
      banCommand(['203.0.113.10/24', '198.51.100.7'], { ...options, fromFile: list, json: true }, noSsh),
    );
    expect(doc.results).toEqual([
      { target: '203.0.113.0/24', status: 'banned', expiresAt: expect.any(String), note: note('banning') },
      { target: '198.51.100.7', status: 'banned', expiresAt: expect.any(String) },
      { target: '198.51.100.9', status: 'banned', expiresAt: expect.any(String) },
      {
        target: '2001:db8::/64',
        status: 'banned',
        expiresAt: expect.any(String),
        note: `${list}:3: 2001:db8::7/64 is the network 2001:db8::/64; banning that`,
      },
    ]);
    expect(out.stderr).toBe(
      `floodgate: note: ${note('banning')}\n` +
        `floodgate: note: ${list}:3: 2001:db8::7/64 is the network 2001:db8::/64; banning that\n`,
    );
  });

  it('unban says which network it lifts, in text and in JSON', async () => {
    await banCommand(['203.0.113.0/24', '198.51.100.0/24'], options, noSsh);
    out.stdout = '';
    await unbanCommand(['203.0.113.10/24'], options);
    expect(out.stderr).toBe(`floodgate: note: ${note('unbanning')}\n`);
    expect(out.stdout).toMatch(/^lifted 203\.0\.113\.0\/24\n/);
    out.stderr = '';
    const doc = await json(() => unbanCommand(['198.51.100.0/24', '198.51.100.200/24'], { ...options, json: true }));
    expect(doc.results).toEqual([
      { target: '198.51.100.0/24', status: 'lifted' },
      {
        target: '198.51.100.0/24',
        status: 'not-banned',
        note: '198.51.100.200/24 is the network 198.51.100.0/24; unbanning that',
      },
    ]);
    expect(out.stderr).toBe('floodgate: note: 198.51.100.200/24 is the network 198.51.100.0/24; unbanning that\n');
    expect(await listed()).toEqual([]);
  });

  it('a usage error in a later target comes alone, with no note before it', async () => {
    await expect(banCommand(['203.0.113.10/24', 'bogus'], options, noSsh)).rejects.toThrow(UsageError);
    expect(out.stderr).toBe('');
  });
});

describe('flush --json and unban --all', () => {
  it('flush --json says how many bans it cleared, and where', async () => {
    await banCommand(['203.0.113.7', '198.51.100.0/24'], options, noSsh);
    const doc = await json(() => flushCommand({ ...options, json: true }));
    expect(doc).toEqual({ stateDir, mode: 'dry-run', via: 'direct', cleared: 2 });
    expect(await listed()).toEqual([]);
  });

  it('unban --all does what flush does, and says it the same way, in text and JSON', async () => {
    await banCommand(['203.0.113.7', '198.51.100.0/24'], options, noSsh);
    out.stdout = '';
    await unbanCommand([], { ...options, all: true });
    expect(out.stdout).toBe('dry-run: 2 would-be ban(s) cleared; the firewall was not changed (use --enforce)\n');
    expect(await listed()).toEqual([]);

    await banCommand(['203.0.113.8'], options, noSsh);
    const doc = await json(() => unbanCommand([], { ...options, all: true, json: true }));
    expect(doc).toEqual({ stateDir, mode: 'dry-run', via: 'direct', cleared: 1 });
    expect(await listed()).toEqual([]);
  });

  it.each([
    ['targets', ['203.0.113.7'], {}, 'unban takes targets or --all, not both'],
    ['--grace', [], { grace: 60_000 }, '--grace does not go with --all'],
  ])('unban --all with %s is a usage error, and nothing is lifted', async (_what, targets, extra, message) => {
    await banCommand(['203.0.113.7', '198.51.100.0/24'], options, noSsh);
    out.stdout = '';
    const refused = unbanCommand(targets, { ...options, ...extra, all: true, json: true });
    await expect(refused).rejects.toThrow(UsageError);
    await expect(refused).rejects.toThrow(message);
    expect(out.stdout).toBe('');
    expect(await listed()).toEqual(['198.51.100.0/24', '203.0.113.7']);
  });

  it('unban with neither targets nor --all names --all', async () => {
    await expect(unbanCommand([], options)).rejects.toThrow(
      new UsageError('nothing to unban: give one or more targets, or --all to lift every ban (as flush does)'),
    );
  });
});

describe('--json through a running daemon', () => {
  let control: ControlServer | undefined;
  afterEach(async () => {
    await control?.stop();
    await new Promise<void>((resolve) => (control ? control.server.close(() => resolve()) : resolve()));
    control = undefined;
  });

  it('says via daemon, keeps an unsaved change’s warning on stderr (exit 3) and out of the document', async () => {
    const unsaved = 'the running floodgate applied this, but cannot save its ban store';
    const answers: Record<string, unknown> = {
      ban: [{ target: '203.0.113.7', status: 'banned', expiresAt: '2026-12-01T20:00:00.000Z', unsaved }],
      unban: [{ target: '203.0.113.7', status: 'lifted', unsaved }],
      flush: { cleared: 4, unsaved },
    };
    const asked: Request[] = [];
    mkdirSync(stateDir, { mode: 0o700 });
    control = await serveControl(
      join(stateDir, 'control.sock'),
      'enforce',
      async (raw) => {
        asked.push(raw as Request);
        return answers[(raw as Request).cmd];
      },
      DEFAULT_CONTROL_LIMITS,
    );
    const daemonOptions = { stateDir, json: true };
    const ban = await json(() => banCommand(['203.0.113.7'], daemonOptions, noSsh));
    expect(ban).toEqual({
      stateDir,
      mode: 'enforce',
      via: 'daemon',
      ttl: null,
      counts: { banned: 1, already: 0, refused: 0 },
      results: [{ target: '203.0.113.7', status: 'banned', expiresAt: '2026-12-01T20:00:00.000Z' }],
    });
    expect(process.exitCode).toBe(3);
    expect(out.stderr).toBe(`floodgate: ${unsaved}\n`);
    process.exitCode = undefined;
    const unban = await json(() => unbanCommand(['203.0.113.7'], daemonOptions));
    expect(unban).toMatchObject({ via: 'daemon', results: [{ target: '203.0.113.7', status: 'lifted' }] });
    expect(process.exitCode).toBe(3);
    const flush = await json(() => unbanCommand([], { ...daemonOptions, all: true }));
    expect(flush).toEqual({ stateDir, mode: 'enforce', via: 'daemon', cleared: 4 });
    expect(asked.map((r) => r.cmd)).toEqual(['ban', 'unban', 'flush']);
  });
});

describe('notes on targets written with host bits', () => {
  it('are printed once each, the first ten, then counted', () => {
    const notes = Array.from({ length: 14 }, (_, i) => `n${i % 13}`);
    notes.splice(3, 0, undefined as unknown as string);
    printTargetNotes(notes);
    const lines = out.stderr.trimEnd().split('\n');
    expect(lines.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `floodgate: note: n${i}`));
    expect(lines.slice(10)).toEqual([
      'floodgate: note: and 3 more targets written with host bits, each taken as its network (--json lists every note)',
    ]);
  });
});
