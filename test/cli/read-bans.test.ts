// list and status read the ban stores without the lock: sound entries are shown, invalid ones are
// skipped and said to be, and an unusable store is a clear error rather than an internal one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readBans } from '../../src/cli/act.js';
import { UsageError } from '../../src/errors.js';

const HOUR = 3_600_000;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-readbans-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

describe('readBans', () => {
  it('shows the sound bans and says how many invalid entries it skipped', async () => {
    const now = Date.now();
    const ban = { target: '198.51.100.7', rule: 'manual', count: 0, createdAt: now, ttl: HOUR, expiresAt: now + HOUR };
    writeFileSync(
      join(dir, 'bans.json'),
      JSON.stringify({ version: 1, bans: [ban, null, { ...ban, target: '0.0.0.0/0' }] }),
      { mode: 0o600 },
    );
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const bans = await readBans(dir, HOUR, HOUR);
    expect(bans.map((b) => b.target)).toEqual(['198.51.100.7']);
    expect(stderr).toHaveBeenCalledWith(
      expect.stringContaining(
        `the ban store ${join(dir, 'bans.json')} has 2 invalid entries, not shown (bans[1]: null is not a ban; …)`,
      ),
    );
  });

  it('refuses an unusable store with a UsageError naming it', async () => {
    writeFileSync(join(dir, 'dry-run-bans.json'), '[', { mode: 0o600 });
    await expect(readBans(dir, HOUR, HOUR)).rejects.toThrow(UsageError);
    await expect(readBans(dir, HOUR, HOUR)).rejects.toThrow(
      `the ban store ${join(dir, 'dry-run-bans.json')} cannot be used: it is not valid JSON`,
    );
  });
});
