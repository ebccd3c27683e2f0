// Bans and unbans made by hand without a daemon are in the ban history too: it is the operator's
// record, whoever made the change.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readHistory } from '../../src/bans/ban-history.js';
import { banCommand } from '../../src/cli/ban.js';
import { unbanCommand } from '../../src/cli/unban.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-manual-history-'));
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('manual commands without a daemon', () => {
  it('write their bans and unbans, with the reason, to the ban history', async () => {
    const options = { stateDir: join(dir, 'state'), policy: 'policies/default.yaml', dryRun: true };
    await banCommand(['192.0.2.7'], { ...options, reason: 'ticket 42' }, { env: {} });
    await unbanCommand(['192.0.2.7'], options);
    const history = readHistory(options.stateDir);
    expect(history.map((e) => [e.event, e.target, e.rule, e.reason, e.dryRun])).toEqual([
      ['ban', '192.0.2.7', 'manual', 'ticket 42', true],
      ['unban', '192.0.2.7', 'manual', null, true],
    ]);
    expect(history[1]!.graceUntil).toEqual(expect.any(String));
  });
});
