// What a user reads about `scan` says what it replaces in words anyone knows, and no user-facing text
// (help, README, policies, messages in src/) speaks of "the seed".
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(join(REPO, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(REPO, join(entry.parentPath, entry.name)));
}

describe('scan --help', () => {
  // The help text is the scan command's description in program.ts (running it needs the build).
  it('names the classic netstat | awk | sort | uniq -c pipeline, not "the seed"', () => {
    const main = readFileSync(join(REPO, 'src', 'cli', 'program.ts'), 'utf8');
    // The description as written: one string literal, or pieces joined with + to keep lines short.
    const call = /\.command\('scan'\)\s*\.description\(\s*((?:(["'])(?:(?!\2).)*\2\s*\+?\s*)+),?\s*\)/s.exec(main);
    const scan = call?.[1]
      ?.match(/(["'])(?:(?!\1).)*\1/g)
      ?.map((literal) => literal.slice(1, -1))
      .join('');
    expect(scan).toContain('the classic `netstat | awk | sort | uniq -c` pipeline');
    expect(scan).not.toMatch(/\bseed\b/i);
  });
});

describe('user-facing text', () => {
  it.each(['README.md', ...filesUnder('policies'), ...filesUnder('src')])('%s does not say "the seed"', (file) => {
    expect(readFileSync(join(REPO, file), 'utf8')).not.toMatch(/\bthe seed('s)?\b/i);
  });
});
