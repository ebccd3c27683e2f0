// The fleet's secrets come from files only: a missing, empty or multi-line file is a ConfigError
// naming the file and never its content.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { readSecret } from '../../src/fleet/open-fleet.js';

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
