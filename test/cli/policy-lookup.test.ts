// Every command finds its policy in one order: --policy, $FLOODGATE_POLICY, the file `run` was
// given in the state directory (manual commands), /etc/floodgate/policy.yaml if it exists, the
// embedded default. $FLOODGATE_ETC stands in for /etc/floodgate so nothing here writes the real /etc.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { listCommand } from '../../src/cli/list.js';
import { policyCheckCommand } from '../../src/cli/policy-check.js';
import { policyInitCommand } from '../../src/cli/policy-init.js';
import { choosePolicy, etcPolicyPath, lookUpPolicy } from '../../src/cli/policy-lookup.js';
import { statusCommand } from '../../src/cli/status.js';
import { policyRecord } from '../../src/daemon/state-dir.js';
import { UsageError } from '../../src/errors.js';
import { DEFAULT_POLICY_PATH, parsePolicy } from '../../src/policy/load-policy.js';

const saved = { FLOODGATE_ETC: process.env.FLOODGATE_ETC, FLOODGATE_POLICY: process.env.FLOODGATE_POLICY };
let dir: string;
let etc: string;
let stateDir: string;
const policyText = (ttl: string) => `rules: [{name: r, threshold: 20}]\nban: {ttl: ${ttl}}\n`;
const file = (name: string, ttl: string) => {
  const path = join(dir, name);
  writeFileSync(path, policyText(ttl));
  return path;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-lookup-'));
  etc = join(dir, 'etc', 'floodgate');
  stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  process.env.FLOODGATE_ETC = etc;
  delete process.env.FLOODGATE_POLICY;
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

/** What a command wrote to stdout. */
async function stdoutOf(action: () => unknown): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  await action();
  vi.restoreAllMocks();
  return out;
}

describe('choosePolicy', () => {
  it('takes --policy, then $FLOODGATE_POLICY, then the record of run, then /etc, then the embedded default', () => {
    expect(etcPolicyPath()).toBe(join(etc, 'policy.yaml'));
    expect(choosePolicy({ stateDir })).toEqual({ file: undefined, source: 'the embedded default' });

    mkdirSync(etc, { recursive: true });
    const etcFile = file('etc/floodgate/policy.yaml', '1m');
    expect(choosePolicy({ stateDir })).toEqual({ file: etcFile, source: `${etcFile} exists` });

    const ran = file('ran.yaml', '2m');
    writeFileSync(policyRecord(stateDir), `${ran}\n`);
    expect(choosePolicy({ stateDir })).toEqual({ file: ran, source: `recorded by floodgate run in ${stateDir}` });
    // `run` itself never reads the record: it is what writes it.
    expect(choosePolicy({}).file).toBe(etcFile);

    const env = file('env.yaml', '3m');
    process.env.FLOODGATE_POLICY = env;
    expect(choosePolicy({ stateDir })).toEqual({ file: env, source: '$FLOODGATE_POLICY' });

    const flag = file('flag.yaml', '4m');
    expect(choosePolicy({ policy: flag, stateDir })).toEqual({ file: flag, source: '--policy' });
  });

  it('skips a record that names the embedded default or a file that is gone, and an empty $FLOODGATE_POLICY', () => {
    mkdirSync(etc, { recursive: true });
    const etcFile = file('etc/floodgate/policy.yaml', '1m');
    process.env.FLOODGATE_POLICY = '';
    writeFileSync(policyRecord(stateDir), `${DEFAULT_POLICY_PATH}\n`);
    expect(choosePolicy({ stateDir, defaultPath: DEFAULT_POLICY_PATH }).file).toBe(etcFile);
    writeFileSync(policyRecord(stateDir), `${join(dir, 'gone.yaml')}\n`);
    expect(choosePolicy({ stateDir, defaultPath: DEFAULT_POLICY_PATH }).file).toBe(etcFile);
  });

  it('a $FLOODGATE_POLICY that cannot be read is an error naming it, not a silent fallback', async () => {
    process.env.FLOODGATE_POLICY = join(dir, 'missing.yaml');
    await expect(lookUpPolicy({})).rejects.toThrow(`cannot read policy ${join(dir, 'missing.yaml')}: no such file`);
  });
});

describe('the commands use the lookup', () => {
  it('policy check without FILE checks /etc/floodgate/policy.yaml when it exists', async () => {
    expect(await stdoutOf(() => policyCheckCommand(undefined))).toMatch(
      new RegExp(`^# ${DEFAULT_POLICY_PATH}: valid\n`),
    );
    mkdirSync(etc, { recursive: true });
    const etcFile = file('etc/floodgate/policy.yaml', '7m');
    const out = await stdoutOf(() => policyCheckCommand(undefined));
    expect(out).toMatch(new RegExp(`^# ${etcFile}: valid\n`));
    expect(out).toMatch(/ttl: 7m/);
  });

  it('list and status say which policy file they used and why', async () => {
    mkdirSync(etc, { recursive: true });
    const etcFile = file('etc/floodgate/policy.yaml', '7m');
    expect(await stdoutOf(() => listCommand({ stateDir }))).toBe(
      `no active bans (state directory ${stateDir})\npolicy: ${etcFile} (${etcFile} exists)\n`,
    );
    const status = await stdoutOf(() => statusCommand({ stateDir }));
    expect(status).toContain(`policy:     ${etcFile} (${etcFile} exists)\n`);
    expect(status).toContain(`state dir:  ${stateDir}\n`);
    const flag = file('flag.yaml', '4m');
    const json = JSON.parse(await stdoutOf(() => statusCommand({ stateDir, policy: flag, json: true }))) as {
      policy: unknown;
    };
    expect(json.policy).toEqual({ file: flag, source: '--policy' });
  });
});

describe('policy init', () => {
  it('writes a commented, valid copy of the default to /etc/floodgate/policy.yaml, making the directory 0755', async () => {
    const out = await stdoutOf(() => policyInitCommand(undefined));
    const written = join(etc, 'policy.yaml');
    expect(out).toBe(`wrote ${written}\nedit it, then check it with: floodgate policy check\n`);
    expect(statSync(etc).mode & 0o777).toBe(0o755);
    expect(statSync(written).mode & 0o777).toBe(0o644);
    const text = readFileSync(written, 'utf8');
    expect(text).toMatch(/^# floodgate policy, written by `floodgate policy init`/);
    expect(text).toContain('# Loopback and this host');
    expect(parsePolicy(text, written)).toEqual(parsePolicy(readFileSync(DEFAULT_POLICY_PATH, 'utf8'), 'default'));
    // …and from now on every command finds it.
    expect(choosePolicy({ stateDir }).file).toBe(written);
  });

  it('refuses to overwrite an existing file and leaves it as it was', async () => {
    const mine = file('mine.yaml', '9m');
    expect(() => policyInitCommand(mine)).toThrow(
      new UsageError(`${mine} already exists: not overwritten (remove it first, or give another FILE)`),
    );
    expect(readFileSync(mine, 'utf8')).toBe(policyText('9m'));
  });

  it('writes to a FILE given, and says how to use it', async () => {
    const target = join(dir, 'sub', 'p.yaml');
    expect(await stdoutOf(() => policyInitCommand(target))).toBe(
      `wrote ${target}\nedit it, then check it with: floodgate policy check ${target}\n`,
    );
    expect(readFileSync(target, 'utf8')).toContain(`--policy ${target}`);
  });
});
