// A manual command run without a daemon prints each refusal once: on its result line, not also as
// the enforcer's warning block on a terminal.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dropRefusals } from '../../src/cli/act.js';
import { memoryLog } from '../support/memory-log.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const hasScript = spawnSync('script', ['--version']).status === 0;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-act-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('dropRefusals', () => {
  it('drops the refused warnings only', () => {
    const { log, events } = memoryLog();
    dropRefusals(log);
    log.warn({ event: 'refused', target: '127.0.0.1' }, 'refused to ban 127.0.0.1');
    log.warn({ event: 'reconcile', repaired: 1 }, 'reconcile: restored 1 piece');
    log.warn('plain');
    expect(events().map((e) => e.msg)).toEqual(['reconcile: restored 1 piece', 'plain']);
  });
});

describe.skipIf(!hasScript)('ban on a terminal', () => {
  it('prints the refusal of an allowlisted target once', () => {
    // script gives the command a terminal, where the log is written as a readable block.
    const code = `const { banCommand } = await import('./src/cli/ban.ts'); await banCommand(['127.0.0.1'], { stateDir: '${join(dir, 'state')}', policy: 'policies/default.yaml' });`;
    const command = `node --import tsx --input-type=module -e "${code}"`;
    const run = spawnSync('script', ['-qec', command, '/dev/null'], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(run.status, run.stderr).toBe(1);
    const output = run.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    expect(output.match(/allowlisted, loopback/g)).toHaveLength(1);
    expect(output).toContain('refused 127.0.0.1: it is allowlisted, loopback or one of this host’s own addresses');
  });
});
