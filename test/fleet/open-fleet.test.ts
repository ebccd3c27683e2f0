// The fleet's secrets come from files only: a missing, empty or multi-line file is a ConfigError
// naming the file and never its content.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createEngine, readCaFile, readSecret } from '../../src/fleet/open-fleet.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-secret-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('readSecret', () => {
  it('reads one line, trimmed', () => {
    writeFileSync(join(dir, 'key'), 'abc123\n');
    expect(readSecret(join(dir, 'key'), 'bouncer_key_file')).toBe('abc123');
  });

  it.each([
    ['missing', undefined, /fleet\.password_file: cannot read .*\/password \(ENOENT\)/],
    ['empty', '\n', /must hold the secret on one line, got an empty file/],
    ['two lines', 'hunter2\nsecond\n', /must hold the secret on one line, got several lines/],
  ])('refuses a %s file without showing its content', (_, content, why) => {
    const file = join(dir, 'password');
    if (content !== undefined) writeFileSync(file, content);
    let error: unknown;
    try {
      readSecret(file, 'password_file');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).not.toContain('hunter2');
  });
});

describe('readCaFile', () => {
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  it('reads PEM certificates as they are', () => {
    writeFileSync(join(dir, 'ca.crt'), PEM);
    expect(readCaFile(join(dir, 'ca.crt'), 'tls_ca_file')).toBe(PEM);
  });

  it.each([
    ['missing', undefined, /^fleet\.tls_ca_file: cannot read .*\/ca\.crt \(ENOENT\)$/],
    ['empty', '', /^fleet\.tls_ca_file: expected .*\/ca\.crt to hold PEM certificates .*, got an empty file$/],
    [
      'a key, not a certificate,',
      '-----BEGIN PRIVATE KEY-----\nMIIE\n',
      /^fleet\.tls_ca_file: expected .*\/ca\.crt to hold PEM certificates \(-----BEGIN CERTIFICATE-----\), got none$/,
    ],
  ])('refuses a %s file', (_, content, why) => {
    const file = join(dir, 'ca.crt');
    if (content !== undefined) writeFileSync(file, content);
    expect(() => readCaFile(file, 'tls_ca_file')).toThrow(ConfigError);
    expect(() => readCaFile(file, 'tls_ca_file')).toThrow(why);
  });
});

describe('queueManualChanges', () => {
  it('puts a manual command’s bans and unbans in the outbox, not its dry-run ones nor fleet ones', async () => {
    const { BanStore } = await import('../../src/bans/ban-store.js');
    const { Enforcer } = await import('../../src/enforce/enforcer.js');
    const { queueManualChanges } = await import('../../src/fleet/open-fleet.js');
    const { buildAllowlist } = await import('../../src/net/allowlist.js');
    const { parseCidr } = await import('../../src/net/ip.js');
    const { FakeBackend } = await import('../support/fake-backend.js');
    const { memoryLog } = await import('../support/memory-log.js');
    const { RecordingRunner } = await import('../support/recording-runner.js');
    const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
    const memory = memoryLog();
    const store = new BanStore(undefined, { ttl: 600_000, maxTtl: 3_600_000 });
    const enforcer = new Enforcer({
      backend: new FakeBackend(),
      store,
      log: memory.log,
      runner: new RecordingRunner(),
      protectedSet: buildAllowlist([], []),
      rate: 1000,
      maxActive: 100,
      killConnections: false,
      clock: () => T0,
    });
    queueManualChanges(memory.log, store);
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'manual', count: 0 });
    enforcer.unban(parseCidr('198.51.100.8')!, 0);
    store.setFleet(
      '198.51.100.9',
      { host: 'web-2', origin: 'floodgate', decisionId: '1', expiresAt: T0 + 600_000 },
      'x',
      T0,
    );
    memory.log.info({ event: 'ban', target: '198.51.100.9', source: 'fleet' }, 'fleet ban');
    expect(store.outbox).toEqual([
      { op: 'ban', target: '198.51.100.7', rule: 'manual', expiresAt: T0 + 600_000 },
      { op: 'unban', target: '198.51.100.8' },
    ]);
  });
});

describe('pushedChange: what a daemon pushes to the fleet', () => {
  it('pushes this host’s own bans and unbans', async () => {
    const { pushedChange } = await import('../../src/fleet/open-fleet.js');
    expect(pushedChange({ event: 'ban', target: '198.51.100.7', rule: 'syn-flood' }, false)).toBe('ban');
    expect(pushedChange({ event: 'unban', target: '198.51.100.7', rule: 'manual' }, false)).toBe('unban');
  });

  it('never pushes a lift made because this host’s allowlist now covers the target', async () => {
    const { pushedChange } = await import('../../src/fleet/open-fleet.js');
    // A reload that allowlists an address lifts its bans here only (reload-policy.ts: why 'allowlist').
    expect(pushedChange({ event: 'unban', target: '198.51.100.9', rule: 'manual', why: 'allowlist' }, false)).toBe(
      null,
    );
  });

  it('never pushes what the fleet applied, a dry-run, or an event without a target', async () => {
    const { pushedChange } = await import('../../src/fleet/open-fleet.js');
    expect(pushedChange({ event: 'ban', target: '198.51.100.9', source: 'fleet' }, false)).toBe(null);
    expect(pushedChange({ event: 'ban', target: '198.51.100.9' }, true)).toBe(null);
    expect(pushedChange({ event: 'ban', target: '198.51.100.9', dryRun: true }, false)).toBe(null);
    expect(pushedChange({ event: 'expire', target: '198.51.100.9' }, false)).toBe(null);
    expect(pushedChange({ event: 'ban' }, false)).toBe(null);
  });
});

describe('createEngine for Redis', () => {
  const fleet = (extra: Record<string, unknown>) =>
    ({ engine: 'redis', url: 'redis://127.0.0.1:1', prefix: 'fg:', resync: 60_000, host: 'web-1', ...extra }) as never;

  it('builds the engine, with or without a password file', async () => {
    writeFileSync(join(dir, 'redis'), 'pw\n');
    for (const engine of [createEngine(fleet({})), createEngine(fleet({ password_file: join(dir, 'redis') }))]) {
      expect(engine.name).toBe('redis');
      await engine.close?.();
    }
  });

  it('refuses an unreadable password file before connecting', () => {
    expect(() => createEngine(fleet({ password_file: join(dir, 'none') }))).toThrow(
      /fleet\.password_file: cannot read .*\/none \(ENOENT\)/,
    );
  });
});
