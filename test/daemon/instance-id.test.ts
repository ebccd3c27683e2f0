// The state directory's instance id: made once, exclusively and privately, kept, and never taken
// from a link or from something that is not an id; root's default directory keeps the plain names.
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  mkdirSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { INSTANCE_FILE, isRootStateDir, stateDirInstance } from '../../src/daemon/instance-id.js';

const dirs: string[] = [];
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'floodgate-instance-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('stateDirInstance', () => {
  it('makes an 8-hex-digit id in a 0600 file the first time and keeps it', () => {
    const dir = temp();
    const first = stateDirInstance(dir);
    expect(first.id).toMatch(/^[0-9a-f]{8}$/);
    expect(first.tag).toBe(`floodgate-${first.id}`);
    const file = join(dir, INSTANCE_FILE);
    expect(readFileSync(file, 'utf8')).toBe(`${first.id}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(stateDirInstance(dir)).toEqual(first);
    // No temporary file is left behind.
    expect(readdirSync(dir)).toEqual([INSTANCE_FILE]);
  });

  it('gives two state directories two ids', () => {
    expect(stateDirInstance(temp()).id).not.toBe(stateDirInstance(temp()).id);
  });

  it('keeps the plain names for /var/lib/floodgate without reading or writing a file there', () => {
    expect(isRootStateDir('/var/lib/floodgate/')).toBe(true);
    expect(isRootStateDir('/var/lib/floodgate2')).toBe(false);
    expect(stateDirInstance('/var/lib/../lib/floodgate')).toMatchObject({
      id: null,
      tag: 'floodgate',
      table: 'floodgate',
    });
  });

  it('refuses a symbolic link in place of the file, and leaves its target alone', () => {
    const dir = temp();
    const elsewhere = join(temp(), 'target');
    writeFileSync(elsewhere, 'deadbeef\n');
    symlinkSync(elsewhere, join(dir, INSTANCE_FILE));
    expect(() => stateDirInstance(dir)).toThrow(UsageError);
    expect(() => stateDirInstance(dir)).toThrow(/is a symbolic link/);
    expect(readFileSync(elsewhere, 'utf8')).toBe('deadbeef\n');
  });

  it('refuses a file that holds no id, naming what it expected and what it found, and does not replace it', () => {
    const dir = temp();
    writeFileSync(join(dir, INSTANCE_FILE), 'floodgate\n', { mode: 0o600 });
    expect(() => stateDirInstance(dir)).toThrow(
      /instance-id: expected an instance id of 8 lowercase hex digits, got "floodgate"/,
    );
    expect(readFileSync(join(dir, INSTANCE_FILE), 'utf8')).toBe('floodgate\n');
  });

  it('refuses a directory in place of the file', () => {
    const dir = temp();
    mkdirSync(join(dir, INSTANCE_FILE));
    expect(() => stateDirInstance(dir)).toThrow(/not a plain file/);
  });
});
