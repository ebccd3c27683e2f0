// A policy file is either valid, with every default filled in, or refused with one line per problem:
// "file:line key: expected …, got …", the line being where the problem is in the file.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import {
  DEFAULT_POLICY_PATH,
  MAX_POLICY_BYTES,
  loadPolicy,
  parsePolicy,
  renderPolicy,
} from '../../src/policy/load-policy.js';

const policyFile = (name: string) => fileURLToPath(new URL(`../../policies/${name}.yaml`, import.meta.url));

/** The message of the ConfigError that parsing `text` as policy.yaml raises. */
function refusal(text: string): string {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected the policy to be refused');
}

// Line numbers matter: rules[2].threshold is on line 14, as in the spec's example.
const BASE = `mode: dry-run
interval: 5s
allowlist: [127.0.0.0/8, "::1"]
rules:
  - name: syn-flood
    states: [SYN_RECV]
    threshold: 20
  - name: syn-flood-subnet
    states: [SYN_RECV]
    per: net
    threshold: 100
  - name: connection-flood
    per: ip
    threshold: 150
  - name: http-flood
    ports: [80, 443]
    states: [ESTABLISHED]
    threshold: 100
ban:
  ttl: 10m
  rate: 20/s
`;

/** BASE with line `n` (1-based) replaced. */
const withLine = (n: number, line: string) => {
  const lines = BASE.split('\n');
  lines[n - 1] = line;
  return lines.join('\n');
};

describe('one validation for `policy check` and for enforcement', () => {
  // `policy check` passed these, then `run --enforce` or `ban --enforce` refused them.
  it('iptables with table: raw', () => {
    expect(refusal(`${BASE}firewall: {backend: iptables, table: raw}\n`)).toBe(
      'policy.yaml:22 firewall.table: expected filter with firewall.backend iptables (table: raw needs backend ipset or nftables; the iptables backend keeps one rule per target in the filter table), got "raw"',
    );
  });

  it.each(['ipset', 'nftables'])('REJECT in the raw table (%s)', (backend) => {
    expect(refusal(`${BASE}firewall: {backend: ${backend}, table: raw, target: REJECT}\n`)).toBe(
      'policy.yaml:22 firewall.target: expected DROP with firewall.table raw (REJECT is not possible in the raw table), got "REJECT"',
    );
  });

  it.each(['ipset', 'nftables'])('accepts table: raw with %s and DROP', (backend) => {
    expect(parsePolicy(`${BASE}firewall: {backend: ${backend}, table: raw}\n`, 'policy.yaml').firewall).toMatchObject({
      backend,
      table: 'raw',
      target: 'DROP',
    });
  });
});

describe('the shipped policies', () => {
  it.each(['default', 'strict', 'busy-web'])('policies/%s.yaml is valid', (name) => {
    const { policy } = loadPolicy(policyFile(name));
    expect(policy.rules.length).toBeGreaterThanOrEqual(3);
    expect(policy.mode).toBe('dry-run');
  });

  it('policies/default.yaml is what floodgate loads without --policy', () => {
    expect(DEFAULT_POLICY_PATH).toBe(policyFile('default'));
    const { policy } = loadPolicy();
    expect(policy.rules.map((rule) => [rule.name, rule.per, rule.threshold, rule.states, rule.ports])).toEqual([
      ['syn-flood', 'ip', 20, ['SYN_RECV'], undefined],
      ['syn-flood-subnet', 'net', 100, ['SYN_RECV'], undefined],
      ['connection-flood', 'ip', 150, undefined, undefined],
      ['http-flood', 'ip', 100, ['ESTABLISHED'], [80, 443]],
    ]);
    expect(policy.ban).toEqual({
      ttl: 600_000,
      max_ttl: 86_400_000,
      max_active: 5000,
      rate: 20,
      kill_connections: true,
    });
    expect(policy.allowlist).toEqual(['127.0.0.0/8', '::1']);
  });

  it('policies/strict.yaml groups IPv6 by /56 and busy-web.yaml has a reload hook', () => {
    expect(loadPolicy(policyFile('strict')).policy.rules[1]).toMatchObject({
      per: 'net',
      prefix4: 24,
      prefix6: 56,
      threshold: 30,
    });
    expect(loadPolicy(policyFile('busy-web')).policy.reload).toEqual({
      command: ['systemctl', 'reload', 'nginx'],
      debounce: 60_000,
      timeout: 15_000,
    });
  });

  it('a policy file that does not exist is a ConfigError naming it', () => {
    expect(() => loadPolicy('/nonexistent/floodgate.yaml')).toThrow(
      new ConfigError('cannot read policy /nonexistent/floodgate.yaml: no such file', {
        problems: [
          { file: '/nonexistent/floodgate.yaml', line: null, key: null, message: 'cannot read the file: no such file' },
        ],
      }),
    );
  });
});

describe('reading the file', () => {
  it.each([
    [
      '/dev/zero, which was read for ever',
      '/dev/zero',
      'cannot read policy /dev/zero: expected a regular file (or a pipe), got a character device',
    ],
    ['a directory', '/tmp', 'cannot read policy /tmp: expected a regular file (or a pipe), got a directory'],
  ])('refuses %s', (_what, path, message) => {
    expect(() => loadPolicy(path)).toThrow(ConfigError);
    expect(() => loadPolicy(path)).toThrow(message);
  });

  it('refuses a policy over 1 MiB before reading it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-policy-'));
    try {
      const file = join(dir, 'huge.yaml');
      writeFileSync(file, `${BASE}${'#'.repeat(MAX_POLICY_BYTES)}\n`);
      expect(() => loadPolicy(file)).toThrow(
        `cannot read policy ${file}: ${statSync(file).size} bytes, more than the 1 MiB allowed for a policy`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('defaults', () => {
  it('fills in everything a minimal policy leaves out', () => {
    const policy = parsePolicy('rules:\n  - name: only\n    threshold: 5\n', 'policy.yaml');
    expect(policy).toEqual({
      mode: 'dry-run',
      interval: 5000,
      allowlist: [],
      rules: [{ name: 'only', proto: 'tcp', per: 'ip', threshold: 5, prefix4: 24, prefix6: 64, min_sources: 3 }],
      ban: { ttl: 600_000, max_ttl: 86_400_000, max_active: 5000, rate: 20, kill_connections: true },
      firewall: { backend: 'iptables', chain: 'INPUT', target: 'DROP', table: 'filter' },
      flood_signal: { syncookies_per_second: 100, drops_per_second: 100, syn_recv_total: 1000 },
      reconcile_interval: 30_000,
    });
  });

  it('keeps the given values of a partly written section and fills the rest', () => {
    const policy = parsePolicy(BASE, 'policy.yaml');
    expect(policy.ban).toEqual({
      ttl: 600_000,
      max_ttl: 86_400_000,
      max_active: 5000,
      rate: 20,
      kill_connections: true,
    });
    expect(policy.rules[1]).toEqual({
      name: 'syn-flood-subnet',
      states: ['SYN_RECV'],
      proto: 'tcp',
      per: 'net',
      threshold: 100,
      prefix4: 24,
      prefix6: 64,
      min_sources: 3,
    });
  });

  it('writes states, addresses and networks in one canonical spelling', () => {
    const policy = parsePolicy(
      'allowlist: ["198.51.100.7/24", "::ffff:198.51.100.9", "2001:DB8::1"]\nrules:\n  - name: a\n    threshold: 5\n    states: [syn-recv, ESTAB, TIME-WAIT, SYN-RECEIVED]\n',
      'policy.yaml',
    );
    expect(policy.allowlist).toEqual(['198.51.100.0/24', '198.51.100.9', '2001:db8::1']);
    expect(policy.rules[0]!.states).toEqual(['SYN_RECV', 'ESTABLISHED', 'TIME_WAIT', 'SYN_RECV']);
  });

  it.each(['default', 'strict', 'busy-web'])(
    'policies/%s.yaml rendered with its defaults reads back to the same policy',
    (name) => {
      const { policy } = loadPolicy(policyFile(name));
      const rendered = renderPolicy(policy);
      expect(rendered).toContain('flood_signal:');
      expect(rendered).toContain('table: filter');
      expect(parsePolicy(rendered, 'rendered.yaml')).toEqual(policy);
    },
  );

  it('renders durations and rates as text a person reads, and reads them back exactly', () => {
    const text =
      `${BASE.replace('ttl: 10m', 'ttl: 45s')}  max_ttl: 90s\n  max_active: 7\nreload: {command: [systemctl, reload, nginx], debounce: 1500ms}\nreconcile_interval: 2h\n`.replace(
        'rate: 20/s',
        'rate: 1/h',
      );
    const policy = parsePolicy(text, 'policy.yaml');
    const rendered = renderPolicy(policy);
    expect(rendered).toMatch(/^ {2}ttl: 45s$/m);
    expect(rendered).toMatch(/^ {2}max_ttl: 90s$/m);
    expect(rendered).toMatch(/^ {2}rate: 1\/h$/m);
    expect(rendered).toMatch(/^ {2}debounce: 1500ms$/m);
    expect(rendered).toMatch(/^reconcile_interval: 2h$/m);
    expect(parsePolicy(rendered, 'rendered.yaml')).toEqual(policy);
  });
});

describe('errors name the file, the line, the key, what was expected and what was found', () => {
  it('a negative threshold', () => {
    expect(refusal(withLine(14, '    threshold: -5'))).toBe(
      'policy.yaml:14 rules[2].threshold: expected a whole number > 0, got -5',
    );
  });

  it.each([
    ['zero', '0', '0'],
    ['a fraction', '2.5', '2.5'],
    ['text', 'many', '"many"'],
    ['a list', '[5]', 'a list'],
  ])('a threshold that is %s', (_what, value, shown) => {
    expect(refusal(withLine(11, `    threshold: ${value}`))).toBe(
      `policy.yaml:11 rules[1].threshold: expected a whole number > 0, got ${shown}`,
    );
  });

  it.each([
    ['zero', '0', '0'],
    ['a fraction', '2.5', '2.5'],
    ['text', 'few', '"few"'],
  ])('a min_sources that is %s', (_what, value, shown) => {
    const lines = BASE.split('\n');
    lines.splice(11, 0, `    min_sources: ${value}`); // line 12, in rules[1]
    expect(refusal(lines.join('\n'))).toBe(
      `policy.yaml:12 rules[1].min_sources: expected a whole number > 0, got ${shown}`,
    );
  });

  it('a min_sources that is valid is kept', () => {
    const lines = BASE.split('\n');
    lines.splice(11, 0, '    min_sources: 10');
    expect(parsePolicy(lines.join('\n'), 'policy.yaml').rules[1]).toMatchObject({ per: 'net', min_sources: 10 });
  });

  it('a missing threshold, at the line of its rule', () => {
    const lines = BASE.split('\n');
    lines.splice(10, 1); // drop rules[1].threshold (line 11)
    expect(refusal(lines.join('\n'))).toBe(
      'policy.yaml:8 rules[1].threshold: expected a whole number > 0, got nothing (the key is missing)',
    );
  });

  it('an unknown top-level key, listing the allowed ones', () => {
    expect(refusal(`${BASE}treshold: 5\n`)).toBe(
      'policy.yaml:22 treshold: unknown key (expected one of: mode, interval, allowlist, rules, ban, firewall, reload, metrics, notify, flood_signal, reconcile_interval, fleet)',
    );
  });

  it('a misspelt key inside a rule, listing the keys a rule takes', () => {
    const message = refusal(withLine(14, '    treshold: 150'));
    expect(message.split('\n')).toEqual([
      'policy.yaml:12 rules[2].threshold: expected a whole number > 0, got nothing (the key is missing)',
      'policy.yaml:14 rules[2].treshold: unknown key (expected one of: name, states, ports, proto, per, threshold, prefix4, prefix6, min_sources)',
    ]);
  });

  it('an unknown key inside a section', () => {
    expect(refusal(`${BASE}  tll: 5m\n`)).toBe(
      'policy.yaml:22 ban.tll: unknown key (expected one of: ttl, max_ttl, max_active, rate, kill_connections)',
    );
  });

  it.each([
    ['words', '5 seconds'],
    ['no number', 'ms'],
    ['too short for a scan interval', '50ms'],
    ['zero: the scan loop would spin', '0'],
    ["over a timer's 24.8 days: setTimeout would fire at once, a busy loop", '30d'],
    ['too long for a scan interval', '2h'],
    ['a bare number of seconds too long', '7200'],
    ['negative', '-5'],
  ])('a bad duration: %s', (_what, value) => {
    expect(refusal(withLine(2, `interval: ${value}`))).toBe(
      `policy.yaml:2 interval: expected a duration from 100ms to 1h, like 5s (a bare number is seconds), got ${/^-?\d+$/.test(value) ? value : JSON.stringify(value)}`,
    );
  });

  it('a bad duration inside a section', () => {
    expect(refusal(withLine(20, '  ttl: 10 minutes'))).toBe(
      'policy.yaml:20 ban.ttl: expected a duration from 1s to 3650d, like 10m (a bare number is seconds), got "10 minutes"',
    );
  });

  it.each([
    ['ttl', '  ttl: 104000000d\n  max_ttl: 104000000d', 20, 'ban.ttl: expected a duration from 1s to 3650d, like 10m'],
    ['max_ttl', '  ttl: 10m\n  max_ttl: 3651d', 21, 'ban.max_ttl: expected a duration from 1s to 3650d, like 24h'],
  ])('a ban %s past 10 years, which would end past the last valid date', (_key, lines, line, message) => {
    expect(refusal(withLine(20, lines)).split('\n')[0]).toBe(
      `policy.yaml:${line} ${message} (a bare number is seconds), got ${JSON.stringify(lines.split('\n')[line - 20]!.split(': ')[1])}`,
    );
  });

  it.each([
    [
      'reload.debounce',
      'reload: {command: [systemctl, reload, nginx], debounce: 30d}',
      'expected a duration from 0s to 1d, like 30s (a bare number is seconds), got "30d"',
    ],
    [
      'reload.timeout',
      'reload: {command: [systemctl, reload, nginx], timeout: 2h}',
      'expected a duration from 1s to 1h, like 10s (a bare number is seconds), got "2h"',
    ],
    [
      'reconcile_interval',
      'reconcile_interval: 500ms',
      'expected a duration from 1s to 1d, like 30s (a bare number is seconds), got "500ms"',
    ],
  ])('a %s out of its bounds', (key, line, message) => {
    expect(refusal(`${BASE}${line}\n`)).toBe(`policy.yaml:22 ${key}: ${message}`);
  });

  it('reads a bare number as seconds, as fail2ban and DDoS Deflate write durations', () => {
    const policy = parsePolicy(withLine(2, 'interval: 5').replace('ttl: 10m', 'ttl: 600'), 'policy.yaml');
    expect(policy.interval).toBe(5000);
    expect(policy.ban.ttl).toBe(600_000);
    expect(parsePolicy(withLine(2, 'interval: 0.5'), 'policy.yaml').interval).toBe(500);
    expect(parsePolicy(withLine(2, 'interval: "5"'), 'policy.yaml').interval).toBe(5000);
  });

  it.each([
    ['fast', '"fast"'],
    ['0/s', '"0/s"'],
    ['20', '20'],
    ['20/d', '"20/d"'],
    ['under one per hour: the queue window would overflow a timer', '"0.0000001/h"'],
    ['over a million per second', '"2000000/s"'],
  ])('a bad rate: %s', (_value, shown) => {
    expect(refusal(withLine(21, `  rate: ${JSON.parse(shown)}`))).toBe(
      `policy.yaml:21 ban.rate: expected a rate from 1/h to 1000000/s, like 20/s, got ${shown}`,
    );
  });

  it('a bad mode', () => {
    expect(refusal(withLine(1, 'mode: enforcing'))).toBe(
      'policy.yaml:1 mode: expected one of dry-run | enforce, got "enforcing"',
    );
  });

  it('a bad state name, at the line of the list', () => {
    expect(refusal(withLine(9, '    states: [SYN_RCVD]'))).toBe(
      'policy.yaml:9 rules[1].states[0]: expected a TCP state like SYN_RECV or ESTABLISHED, got "SYN_RCVD"',
    );
  });

  it('a port above 65535, naming its place in the list', () => {
    expect(refusal(withLine(16, '    ports: [80, 70000]'))).toBe(
      'policy.yaml:16 rules[3].ports[1]: expected a whole number > 0 and <= 65535, got 70000',
    );
  });

  it('a bad allowlist entry in a block list, at its own line', () => {
    const text = BASE.replace(
      'allowlist: [127.0.0.0/8, "::1"]',
      'allowlist:\n  - 127.0.0.0/8\n  - 198.51.100.300\n  - "::1"',
    );
    expect(refusal(text)).toBe(
      'policy.yaml:5 allowlist[1]: expected an IP address or a network like 198.51.100.0/24, got "198.51.100.300"',
    );
  });

  it('a host name in the allowlist', () => {
    expect(refusal(withLine(3, 'allowlist: [office.example.com]'))).toBe(
      'policy.yaml:3 allowlist[0]: expected an IP address or a network like 198.51.100.0/24, got "office.example.com"',
    );
  });

  it('an empty rules list', () => {
    expect(refusal('mode: dry-run\nrules: []\n')).toBe(
      'policy.yaml:2 rules: expected at least one rule, got an empty list',
    );
  });

  it('a rules key with nothing under it', () => {
    expect(refusal('mode: dry-run\nrules:\n')).toBe(
      'policy.yaml:2 rules: expected a list of rules, got null (an empty value)',
    );
  });

  it('rules written as a mapping instead of a list', () => {
    expect(refusal('rules:\n  name: a\n  threshold: 5\n')).toBe(
      'policy.yaml:2 rules: expected a list of rules, got a mapping',
    );
  });

  it('two rules with the same name, at the second one', () => {
    expect(refusal(withLine(12, '  - name: syn-flood'))).toBe(
      'policy.yaml:12 rules[2].name: expected a name no other rule has, got "syn-flood" twice',
    );
  });

  it('a rule name that could reach a command line', () => {
    expect(refusal(withLine(5, '  - name: "x; reboot"'))).toBe(
      `policy.yaml:5 rules[0].name: expected a rule name (a letter or digit, then letters, digits, '_', '-' or '.', at most 40 characters), got "x; reboot"`,
    );
  });

  it.each(['-F', '--flush', '-j', '.hidden', '1NPUT'])(
    'a chain name %j that iptables would read as an option, or not as a chain',
    (chain) => {
      expect(refusal(`${BASE}firewall: {chain: "${chain}"}\n`)).toBe(
        `policy.yaml:22 firewall.chain: expected a chain name (a letter, then letters, digits, '_', '-' or '.', at most 28 characters), got ${JSON.stringify(chain)}`,
      );
    },
  );

  it('a chain name of the usual kinds is accepted', () => {
    for (const chain of ['INPUT', 'FLOODGATE', 'f2b-sshd', 'in_public.allow'])
      expect(parsePolicy(`${BASE}firewall: {chain: ${chain}}\n`, 'policy.yaml').firewall.chain).toBe(chain);
  });

  it('an empty states list, which would silently disable the rule', () => {
    expect(refusal(withLine(6, '    states: []'))).toBe(
      'policy.yaml:6 rules[0].states: expected at least one TCP state (leave states out for every state but LISTEN), got an empty list: the rule could never match',
    );
  });

  it('quotes at most about 80 characters of a long bad value', () => {
    const message = refusal(withLine(1, `mode: ${'x'.repeat(1_000_000)}`));
    expect(message).toBe(
      `policy.yaml:1 mode: expected one of dry-run | enforce, got "${'x'.repeat(80)}"… (1000000 characters)`,
    );
  });

  it('an empty ports list, which would silently disable the rule', () => {
    expect(refusal(withLine(16, '    ports: []'))).toBe(
      'policy.yaml:16 rules[3].ports: expected at least one port (leave ports out for every port), got an empty list: the rule could never match',
    );
  });

  it('a ttl longer than max_ttl, naming both (every ban would last max_ttl)', () => {
    expect(refusal(`${BASE}  max_ttl: 5m\n`)).toBe(
      'policy.yaml:20 ban.ttl: expected at most ban.max_ttl (5m), got 10m: raise max_ttl or lower ttl',
    );
    expect(refusal('rules: [{name: a, threshold: 5}]\nban: {ttl: 2d}\n')).toBe(
      'policy.yaml:2 ban.ttl: expected at most ban.max_ttl (1d), got 2d: raise max_ttl or lower ttl',
    );
  });

  it.each([
    [
      'an undefined alias',
      `${BASE}allowlist2: 1\n`.replace('allowlist2: 1', 'reconcile_interval: *nope'),
      22,
      'Unresolved alias (the anchor must be set before the alias): nope (at the alias *nope)',
    ],
    [
      'an alias bomb',
      `${BASE}x1: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nx2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nx3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nx4: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
      23,
      'Excessive alias count indicates a resource exhaustion attack (at the alias *a)',
    ],
  ])('%s, with its file and line instead of an internal error', (_what, text, line, message) => {
    expect(refusal(text)).toBe(`policy.yaml:${line} not valid YAML: ${message}`);
  });

  it('a reload command written as one string', () => {
    expect(refusal(`${BASE}reload:\n  command: systemctl reload nginx\n`)).toBe(
      'policy.yaml:23 reload.command: expected a command as a list of strings, like [systemctl, reload, nginx], got "systemctl reload nginx"',
    );
  });

  it('a duplicate YAML key, at the second occurrence', () => {
    expect(refusal(`${BASE}mode: enforce\n`)).toBe(
      'policy.yaml:22 mode: given twice in the same mapping (not valid YAML: keys must be unique)',
    );
  });

  it('a duplicate key inside a rule', () => {
    expect(refusal(withLine(13, '    threshold: 10'))).toBe(
      'policy.yaml:14 threshold: given twice in the same mapping (not valid YAML: keys must be unique)',
    );
  });

  it('a tab used for indentation', () => {
    expect(refusal(withLine(13, '\tper: ip'))).toMatch(/^policy\.yaml:13 not valid YAML: Tabs are not allowed/);
  });

  it('a key with two colons', () => {
    expect(refusal(withLine(2, 'interval: 5s: 3'))).toMatch(/^policy\.yaml:2 not valid YAML: /);
  });

  it('a top-level list instead of a mapping', () => {
    expect(refusal('- name: a\n  threshold: 5\n')).toBe(
      'policy.yaml:1 (top level): expected a mapping of policy keys (mode, interval, rules, …), got a list',
    );
  });

  it('a top-level scalar instead of a mapping', () => {
    expect(refusal('enforce\n')).toBe(
      'policy.yaml:1 (top level): expected a mapping of policy keys (mode, interval, rules, …), got "enforce"',
    );
  });

  it.each([
    ['an empty file', ''],
    ['a file of comments only', '# to do\n\n'],
  ])('%s: the rules are missing', (_what, text) => {
    expect(refusal(text)).toBe('policy.yaml:1 rules: expected a list of rules, got nothing (the key is missing)');
  });

  it('several problems at once, one line each, in file order', () => {
    const text = withLine(1, 'mode: x')
      .replace('interval: 5s', 'interval: y')
      .replace('threshold: 150', 'threshold: 0');
    expect(refusal(text).split('\n')).toEqual([
      'policy.yaml:1 mode: expected one of dry-run | enforce, got "x"',
      'policy.yaml:2 interval: expected a duration from 100ms to 1h, like 5s (a bare number is seconds), got "y"',
      'policy.yaml:14 rules[2].threshold: expected a whole number > 0, got 0',
    ]);
  });

  it('is a ConfigError, which the CLI maps to exit code 2', () => {
    try {
      parsePolicy('mode: x\nrules: []\n', 'policy.yaml');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
    }
  });
});
