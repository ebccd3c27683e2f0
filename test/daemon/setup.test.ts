// What openEnforcement does with the ban store it loads: detector bans of protected addresses
// (loopback, the allowlist, the host's own) are dropped; forced manual ones stay.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEnforcement } from '../../src/daemon/setup.js';
import { parsePolicy } from '../../src/policy/load-policy.js';
import { memoryLog } from '../support/memory-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-setup-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('openEnforcement and the loaded store', () => {
  it('drops detector bans that cover a protected address, keeps manual ones, and says so', async () => {
    const now = Date.now();
    const ban = (target: string, rule: string) => ({
      target,
      rule,
      count: 0,
      createdAt: now,
      ttl: 600_000,
      expiresAt: now + 600_000,
    });
    writeFileSync(
      join(dir, 'dry-run-bans.json'),
      JSON.stringify({
        version: 1,
        bans: [
          ban('127.0.0.1', 'per_source'),
          ban('192.0.2.0/24', 'per_network'),
          ban('198.51.100.7', 'per_source'),
          ban('192.0.2.9', 'manual'),
        ],
      }),
      { mode: 0o600 },
    );
    const policy = parsePolicy('mode: dry-run\nrules: [{name: r, threshold: 20}]\nallowlist: [192.0.2.9]\n', 'p.yaml');
    const { log, named } = memoryLog();
    const { enforcer } = await openEnforcement(policy, 'dry-run', dir, log);
    expect(
      enforcer.store
        .all()
        .map((b) => b.target)
        .sort(),
    ).toEqual(['192.0.2.9', '198.51.100.7']);
    expect(named('store-entries-dropped').map((e) => e.target)).toEqual(['127.0.0.1', '192.0.2.0/24']);
    await enforcer.close();
    expect(readFileSync(join(dir, 'dry-run-bans.json'), 'utf8')).not.toContain('127.0.0.1');
  });
});
