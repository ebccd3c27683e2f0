// `floodgate policy check` for scripts and unit files: --json prints one document, valid or not, with
// each mistake's file, line and key; -q prints nothing at all. The exit codes are those of the text
// output: 0 for a valid policy, 2 for one that is not.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { PolicyCheckJson } from '../../src/cli/policy-check.js';
import { captureOutput } from '../support/captured-output.js';

const out = captureOutput();

let main: (argv?: readonly string[]) => Promise<void>;
beforeAll(async () => {
  (globalThis as { FLOODGATE_VERSION?: string }).FLOODGATE_VERSION = '0.0.0-test';
  ({ main } = await import('../../src/cli/program.js'));
});

const dir = mkdtempSync(join(tmpdir(), 'floodgate-policy-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const policyFile = (name: string, text: string): string => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};

const check = (...args: string[]) => main(['node', 'floodgate', 'policy', 'check', ...args]);

const VALID = 'mode: dry-run\nrules:\n  - name: syn\n    states: [SYN_RECV]\n    threshold: 20\n';
// The README's example of three mistakes: a misspelt key (so a required one is missing) and a bad value.
const BAD =
  'mode: dry-run\nrules:\n  - name: a\n    states: [SYN_RECV]\n    treshold: 20\n  - name: b\n    threshold: -5\n';

describe('policy check --json', () => {
  it('a valid policy: ok, no errors, and the effective policy the text output prints; exit 0', async () => {
    const file = policyFile('valid.yaml', VALID);
    await check(file);
    const text = out.stdout;
    expect(text.split('\n')[0]).toBe(`# ${file}: valid`);
    out.stdout = '';
    await check(file, '--json');
    expect(out.stderr).toBe('');
    expect(process.exitCode ?? 0).toBe(0);
    const doc = JSON.parse(out.stdout) as PolicyCheckJson;
    expect(doc).toEqual({ file, ok: true, errors: [], policy: parse(text) });
    // Every default filled in, durations as text.
    expect(doc.policy).toMatchObject({ interval: '5s', ban: { ttl: '10m' }, rules: [{ name: 'syn', per: 'ip' }] });
  });

  it('an invalid policy: not ok, each mistake with its file, line and key, as the text lists them; exit 2', async () => {
    const file = policyFile('bad.yaml', BAD);
    const failed = await main(['node', 'floodgate', 'policy', 'check', file]).then(() => out.stderr);
    expect(process.exitCode).toBe(2);
    process.exitCode = undefined;
    out.stderr = '';
    await check(file, '--json');
    expect(out.stderr).toBe('');
    expect(process.exitCode).toBe(2);
    const doc = JSON.parse(out.stdout) as PolicyCheckJson;
    expect(doc).toEqual({
      file,
      ok: false,
      errors: [
        {
          file,
          line: 3,
          key: 'rules[0].threshold',
          message: 'expected a whole number > 0, got nothing (the key is missing)',
        },
        {
          file,
          line: 5,
          key: 'rules[0].treshold',
          message:
            'unknown key (expected one of: name, states, ports, proto, per, threshold, prefix4, prefix6, min_sources)',
        },
        { file, line: 7, key: 'rules[1].threshold', message: 'expected a whole number > 0, got -5' },
      ],
      policy: null,
    });
    expect(failed).toBe(
      `floodgate: ${doc.errors.map((e) => `${e.file}:${e.line} ${e.key}: ${e.message}`).join('\n')}\n`,
    );
  });

  it.each([
    [
      'a YAML syntax error',
      'syntax.yaml',
      'mode: [\n',
      { line: 2, key: null, message: expect.stringMatching(/^not valid YAML: /) },
    ],
    ['a key given twice', 'twice.yaml', 'mode: dry-run\nmode: enforce\n', { line: 2, key: 'mode' }],
    ['a list at the top level', 'list.yaml', '- mode\n', { line: 1, key: '(top level)' }],
  ])('%s is one error with its line', async (_what, name, text, error) => {
    const file = policyFile(name, text);
    await check(file, '--json');
    expect(process.exitCode).toBe(2);
    expect(JSON.parse(out.stdout)).toEqual({
      file,
      ok: false,
      errors: [expect.objectContaining({ file, ...error })],
      policy: null,
    });
  });

  it('a file that cannot be read is an error with no line or key', async () => {
    const file = join(dir, 'missing.yaml');
    await check(file, '--json');
    expect(process.exitCode).toBe(2);
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toEqual({
      file,
      ok: false,
      errors: [{ file, line: null, key: null, message: 'cannot read the file: no such file' }],
      policy: null,
    });
  });

  it('hides a webhook’s secrets, as the text output does', async () => {
    const file = policyFile(
      'webhook.yaml',
      `${VALID}notify:\n  webhook:\n    url: https://hooks.example.com/T000/SECRET\n    headers: {Authorization: Bearer TOKEN}\n`,
    );
    await check(file, '--json');
    expect(out.stdout).not.toMatch(/SECRET|TOKEN/);
    expect(JSON.parse(out.stdout).policy.notify.webhook.headers).toEqual({ Authorization: '(hidden)' });
  });
});

describe('policy check -q', () => {
  it.each([
    ['a valid policy', 'valid-q.yaml', VALID, 0],
    ['an invalid policy', 'bad-q.yaml', BAD, 2],
    ['a file that cannot be read', 'missing-q.yaml', null, 2],
  ])('%s: nothing printed, exit %i', async (_what, name, text, code) => {
    const file = text === null ? join(dir, name) : policyFile(name, text);
    for (const flag of ['-q', '--quiet']) {
      await check(file, flag);
      expect([out.stdout, out.stderr, process.exitCode ?? 0]).toEqual(['', '', code]);
      process.exitCode = undefined;
    }
  });

  it('with --json is a usage error', async () => {
    await check(policyFile('valid-qj.yaml', VALID), '--json', '-q');
    expect(out.stdout).toBe('');
    expect(out.stderr).toBe('floodgate: --json and --quiet contradict each other: give one\n');
    expect(process.exitCode).toBe(2);
  });

  it('policy check --help offers both', async () => {
    await check('--help');
    expect(out.stdout).toMatch(/^ {2}--json +print one JSON object, valid or not/m);
    expect(out.stdout).toMatch(/^ {2}-q, --quiet +print nothing, errors included/m);
  });
});
