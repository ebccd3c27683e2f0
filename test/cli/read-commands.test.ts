// `list` and `status` with no daemon: both read both ban stores (a `ban --enforce` made without a
// daemon is enforced whatever the policy's mode), say which state directory they read, and tell a
// plain user whose directory is empty that root's floodgate keeps its bans elsewhere.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BanStore } from '../../src/bans/ban-store.js';
import { listCommand } from '../../src/cli/list.js';
import { type Reader, rootStateNote } from '../../src/cli/state-dir-note.js';
import { statusCommand } from '../../src/cli/status.js';
import { stateFile } from '../../src/daemon/state-dir.js';
import { captureOutput } from '../support/captured-output.js';

const out = captureOutput();

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-read-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A state directory as `ban --enforce` (and `ban --dry-run`) leave it with no daemon. */
function stateWith(bans: { enforce?: string[]; dryRun?: string[] }): string {
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir, { recursive: true });
  for (const [mode, targets] of [
    ['enforce', bans.enforce ?? []],
    ['dry-run', bans.dryRun ?? []],
  ] as const) {
    const store = BanStore.load(stateFile(stateDir, mode), { ttl: 3_600_000, maxTtl: 86_400_000 });
    for (const target of targets) store.add({ target, rule: 'manual', count: 0, createdAt: Date.now() }, 3_600_000);
    store.save();
  }
  return stateDir;
}

const USER: Reader = { uid: 1000, rootStateDir: '/var/lib/floodgate', exists: () => true };
const ROOT: Reader = { ...USER, uid: 0 };

describe('status with no daemon', () => {
  it('counts the bans of a direct ban --enforce even though the policy says dry-run, and says which mode each is in', async () => {
    const stateDir = stateWith({ enforce: ['198.51.100.7', '203.0.113.0/24'], dryRun: ['192.0.2.9'] });
    await statusCommand({ stateDir, json: true }, ROOT);
    const status = JSON.parse(out.stdout) as {
      stateDir: string;
      daemon: null;
      mode: string;
      active: number;
      bans: { enforce: number; dryRun: number };
    };
    expect(status).toMatchObject({
      stateDir,
      daemon: null,
      mode: 'dry-run',
      active: 3,
      bans: { enforce: 2, dryRun: 1 },
    });
    // No daemon: a monitoring check sees it in the exit code.
    expect(process.exitCode).toBe(1);

    out.stdout = '';
    await statusCommand({ stateDir }, ROOT);
    expect(out.stdout).toContain(`state dir:  ${stateDir}\n`);
    expect(out.stdout).toContain('mode:       dry-run (what the policy says; no daemon runs)\n');
    expect(out.stdout).toContain(
      'bans:       3 active: 2 enforced (in the firewall), 1 dry-run (not in the firewall); 0 refused, 0 queued\n',
    );
    // No enforce command has run here: no instance id yet, and status does not make one.
    expect(status).toMatchObject({ tag: null });
    expect(existsSync(join(stateDir, 'instance-id'))).toBe(false);
    writeFileSync(join(stateDir, 'instance-id'), '0e2e0e2e\n', { mode: 0o600 });
    out.stdout = '';
    await statusCommand({ stateDir }, ROOT);
    expect(out.stdout).toContain(
      "backend:    iptables (this state directory's rules, sets and table: floodgate-0e2e0e2e)\n",
    );
    expect(out.stderr).toBe('');
  });
});

describe('list with no daemon', () => {
  it('shows the state directory it read, and both stores’ bans with their mode', async () => {
    const stateDir = stateWith({ enforce: ['198.51.100.7'], dryRun: ['192.0.2.9'] });
    await listCommand({ stateDir }, ROOT);
    expect(out.stdout.split('\n')[0]).toBe(`state directory ${stateDir}`);
    expect(out.stdout).toMatch(/198\.51\.100\.7\s+manual\s+0\s.*\senforced/);
    expect(out.stdout).toMatch(/192\.0\.2\.9\s+manual\s+0\s.*\sdry-run \(not in firewall\)/);
  });
});

describe('a plain user whose state directory is empty', () => {
  it('is told that root’s state directory exists, by list (text and --json, on stderr) and status', async () => {
    const stateDir = stateWith({});
    await listCommand({ stateDir }, USER);
    expect(out.stdout).toMatch(new RegExp(`^no active bans \\(state directory ${stateDir}\\)\\npolicy: `));
    expect(out.stderr).toBe(
      `floodgate: note: ${stateDir} has no bans, but /var/lib/floodgate exists: a floodgate run as root keeps its bans there, which this user (uid 1000) cannot read; run this command as root (sudo), which reads /var/lib/floodgate\n`,
    );

    out.stdout = '';
    out.stderr = '';
    await listCommand({ stateDir, json: true }, USER);
    expect(JSON.parse(out.stdout)).toEqual([]);
    expect(out.stderr).toContain('/var/lib/floodgate exists');

    out.stdout = '';
    out.stderr = '';
    await statusCommand({ stateDir }, USER);
    expect(out.stdout).toContain(`state dir:  ${stateDir}\n`);
    expect(out.stderr).toContain('/var/lib/floodgate exists');
  });

  it('is told nothing when it has bans, when root’s directory does not exist, or when it is root', async () => {
    const stateDir = stateWith({ dryRun: ['192.0.2.9'] });
    await listCommand({ stateDir }, USER);
    await statusCommand({ stateDir }, USER);
    expect(out.stderr).toBe('');
    expect(rootStateNote(stateDir, true, { ...USER, exists: () => false })).toBeNull();
    expect(rootStateNote(stateDir, true, ROOT)).toBeNull();
    expect(rootStateNote('/var/lib/floodgate/', true, USER)).toBeNull();
    expect(rootStateNote(stateDir, true, USER)).toMatch(/^note: /);
  });
});
