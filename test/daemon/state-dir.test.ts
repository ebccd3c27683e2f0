// The state directory decides what floodgate bans, which policy a manual command loads and what its
// reload hook runs: one another user could change is refused, as sshd's StrictModes does, with a
// message saying what to do. Ownership cases need root (chown); they are skipped otherwise.
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readStateFile, writeFileAtomic } from '../../src/bans/state-file.js';
import { ensureStateDir } from '../../src/daemon/state-dir.js';
import { UsageError } from '../../src/errors.js';

const root = process.getuid?.() === 0;
const NOBODY = 65534;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-statedir-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ensureStateDir', () => {
  it('creates a missing state directory, mode 0700, and accepts it', () => {
    const stateDir = join(dir, 'a', 'sd');
    ensureStateDir(stateDir);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    ensureStateDir(stateDir);
  });

  it('refuses a state directory its group or others may write, saying chmod go-w', () => {
    const stateDir = join(dir, 'sd');
    mkdirSync(stateDir);
    chmodSync(stateDir, 0o777);
    expect(() => ensureStateDir(stateDir)).toThrow(UsageError);
    expect(() => ensureStateDir(stateDir)).toThrow(
      `the state directory ${stateDir} is writable by its group or by others (mode 0777); any of them could control what floodgate bans and runs: \`chmod go-w ${stateDir}\``,
    );
    chmodSync(stateDir, 0o755);
    ensureStateDir(stateDir);
  });

  it.runIf(root)('refuses a state directory owned by another user, naming both users and the chown', () => {
    const stateDir = join(dir, 'shared');
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, NOBODY, NOBODY);
    expect(() => ensureStateDir(stateDir)).toThrow(
      `the state directory ${stateDir} is owned by nobody (uid ${NOBODY}), not by root (uid 0), the user floodgate runs as; another user must not control what floodgate bans and runs: run floodgate as its owner, or \`chown 0 ${stateDir}\`, or choose another --state-dir`,
    );
  });

  it.runIf(root)('refuses a state directory under a directory another user owns (they could swap it)', () => {
    const theirs = join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o755 });
    chownSync(theirs, NOBODY, NOBODY);
    const stateDir = join(theirs, 'sd');
    mkdirSync(stateDir, { mode: 0o700 });
    expect(() => ensureStateDir(stateDir)).toThrow(
      `${theirs}, above the state directory ${stateDir}, is owned by nobody (uid ${NOBODY})`,
    );
  });

  it('accepts a state directory under a sticky world-writable directory such as /tmp', () => {
    const sticky = join(dir, 'tmp');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    ensureStateDir(join(sticky, 'sd'));
  });
});

describe('files of the state directory', () => {
  it('readStateFile refuses a symlink and a file others may write, and reads a sound one', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    symlinkSync(victim, join(dir, 'policy-path'));
    expect(() => readStateFile(join(dir, 'policy-path'))).toThrow(/is a symbolic link, which floodgate never follows/);
    const open = join(dir, 'open');
    writeFileSync(open, 'x');
    chmodSync(open, 0o666);
    expect(() => readStateFile(open)).toThrow(
      `the state file ${open} is writable by its group or by others (mode 0666)`,
    );
    chmodSync(open, 0o600);
    expect(readStateFile(open)).toBe('x');
    expect(readStateFile(join(dir, 'absent'))).toBeNull();
  });

  it.runIf(root)('readStateFile refuses a file another user owns', () => {
    const planted = join(dir, 'policy-path');
    writeFileSync(planted, '/tmp/theirs.yaml\n', { mode: 0o600 });
    chownSync(planted, NOBODY, NOBODY);
    expect(() => readStateFile(planted)).toThrow(
      `the state file ${planted} is owned by nobody (uid ${NOBODY}), not by root (uid 0)`,
    );
  });

  it('writeFileAtomic never writes through a planted symlink and leaves no temporary file behind', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'ROOT ONLY\n', { mode: 0o600 });
    // The old temporary names: PATH.PID.tmp for this pid and its neighbours.
    for (let pid = process.pid - 5; pid <= process.pid + 5; pid++)
      symlinkSync(victim, join(dir, `bans.json.${pid}.tmp`));
    writeFileAtomic(join(dir, 'bans.json'), '{"version":1}');
    expect(readFileSync(victim, 'utf8')).toBe('ROOT ONLY\n');
    expect(readFileSync(join(dir, 'bans.json'), 'utf8')).toBe('{"version":1}');
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp') && !/^bans\.json\.\d+\.tmp$/.test(name))).toEqual(
      [],
    );
  });
});
