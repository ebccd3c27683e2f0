// The ipset and nftables backends against the real kernel, with `floodgate run --enforce` in the
// lab's server namespace: floods banned into the sets, bans from a file through the daemon, a
// kill -9 and a restart, repair after an external flush, expiry done by floodgate (not by the
// kernel timeout), a full set, switching backends in both directions, and flush.
//
// Safety: every floodgate, iptables, ipset and nft command runs in the lab's server namespace
// (lab.execServer / lab.spawnServer, through ./support.js); the host's firewall is never read or
// changed, and every address is a documentation address.
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Daemon,
  type ExecResult,
  INTERVAL_MS,
  type Lab,
  type ListedBan,
  type PolicyObject,
  SKIP_REASON,
  floodgate,
  floodgateOk,
  listBans,
  range4,
  range6,
  tempDir,
  useLab,
  waitFor,
  writePolicy,
  writeText,
  sleep,
} from './support.js';
import { type FirewallInstance, firewallInstance } from '../../src/firewall/instance.js';
import { SAFETY_MARGIN_S } from '../../src/firewall/ipset.js';
import { cidrContains, parseCidr } from '../../src/net/ip.js';

type Kind = 'ipset' | 'nftables';
type AnyKind = Kind | 'iptables';
type Family = 4 | 6;

const ATTACKER = '198.51.100.66';
const SPREAD4 = range4('203.0.113.', 1, 40);
const SPREAD6 = range6('2001:db8:1::', 1, 40);
const RECONCILE_MS = 2000;

/**
 * The instance id the single-floodgate tests give their state directory up front, so that the
 * names of its rule comment, sets and table are known before floodgate runs (floodgate keeps an id
 * it finds; test/daemon/instance-id.test.ts covers making one).
 */
const ID = '0e2e0e2e';
const N = firewallInstance(ID);

function stateDirIn(dir: string, id: string | null = ID): string {
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  if (id !== null) writeFileSync(join(stateDir, 'instance-id'), `${id}\n`, { mode: 0o600 });
  return stateDir;
}

// ---------------------------------------------------------------------------
// can this file run here?

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const SKIP =
  SKIP_REASON ??
  (['ipset', 'nft']
    .filter((tool) => !onPath(tool))
    .map((tool) => `${tool} is not on PATH`)
    .join(', ') ||
    null);
if (SKIP !== null) {
  console.warn(
    `\n*** floodgate ipset/nftables backend e2e tests SKIPPED: ${SKIP} ***\n*** they did NOT run; run them as root with iproute2, iptables, ipset and nftables installed ***\n`,
  );
}

// ---------------------------------------------------------------------------
// reading the server namespace's firewall

async function run(lab: Lab, argv: string[]): Promise<ExecResult> {
  const r = await lab.execServer(argv, { timeoutMs: 15_000 });
  if (r.exitCode !== 0)
    throw new Error(`${argv.join(' ')} failed in the lab (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

const iptables = (family: Family) => (family === 4 ? 'iptables' : 'ip6tables');

async function inputRules(lab: Lab, family: Family): Promise<string[]> {
  return (await run(lab, [iptables(family), '-w', '-S', 'INPUT'])).stdout
    .split('\n')
    .filter((line) => line.trim() !== '');
}

/** An instance's per-target iptables rules (the iptables backend), both families. */
async function iptablesTargets(lab: Lab, names: FirewallInstance = N): Promise<string[]> {
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    for (const line of await inputRules(lab, family)) {
      const tokens = line.split(' ');
      if (tokens[tokens.indexOf('--comment') + 1] !== names.tag || !tokens.includes('-s')) continue;
      // iptables prints hosts with /32 and /128; floodgate lists them without.
      out.push(tokens[tokens.indexOf('-s') + 1]!.replace(/\/(32|128)$/, ''));
    }
  }
  return out.sort();
}

/** The rule the ipset backend puts in INPUT for each family, as `iptables -S` prints it. */
const setRule = (family: Family, names: FirewallInstance = N) =>
  `-A INPUT -m set --match-set ${names.sets[family]} src -m comment --comment ${names.tag} -j DROP`;

interface Element {
  /** As `floodgate list --json` writes targets: hosts without a prefix. */
  readonly target: string;
  readonly set: string;
  /** The kernel timeout in seconds (the safety net), null when it has none. */
  readonly timeoutS: number | null;
}

async function ipsetNames(lab: Lab): Promise<string[]> {
  return (await run(lab, ['ipset', 'list', '-n'])).stdout.split('\n').filter((name) => name !== '');
}

async function ipsetElements(lab: Lab, names: FirewallInstance = N): Promise<Element[]> {
  const out: Element[] = [];
  for (const line of (await run(lab, ['ipset', 'save'])).stdout.split('\n')) {
    const [op, set, target, ...rest] = line.trim().split(/\s+/);
    if (op !== 'add' || (set !== names.sets[4] && set !== names.sets[6])) continue;
    const timeout = rest.indexOf('timeout');
    out.push({ target: target!, set, timeoutS: timeout >= 0 ? Number(rest[timeout + 1]) : null });
  }
  return out;
}

type NftValue = string | { prefix: { addr: string; len: number } } | { elem: { val: NftValue; timeout?: number } };
type NftExpr = {
  match?: { right?: unknown; left?: { payload?: { protocol: string; field: string } } };
  counter?: { packets: number; bytes: number };
};
interface NftItem {
  table?: { family: string; name: string };
  set?: { name: string; elem?: NftValue[]; size?: number };
  chain?: { name: string; hook?: string; type?: string };
  rule?: { chain: string; expr: NftExpr[] };
}

/** `nft -j list table inet floodgate-<id>`, or null when the table does not exist. */
async function nftTable(lab: Lab, names: FirewallInstance = N): Promise<NftItem[] | null> {
  const r = await lab.execServer(['nft', '-j', 'list', 'table', 'inet', names.table]);
  if (r.exitCode !== 0) return null;
  return (JSON.parse(r.stdout) as { nftables: NftItem[] }).nftables;
}

function nftElement(set: string, value: NftValue, timeoutS: number | null = null): Element {
  if (typeof value === 'string') return { target: value, set, timeoutS };
  if ('elem' in value) return nftElement(set, value.elem.val, value.elem.timeout ?? null);
  return { target: `${value.prefix.addr}/${value.prefix.len}`, set, timeoutS };
}

async function nftElements(lab: Lab, names: FirewallInstance = N): Promise<Element[]> {
  const out: Element[] = [];
  for (const item of (await nftTable(lab, names)) ?? []) {
    if (item.set === undefined) continue;
    for (const value of item.set.elem ?? []) out.push(nftElement(item.set.name, value));
  }
  return out;
}

/** The drop rules of floodgate's nft chain, by the set each one matches (`@hosts4`), with its counter. */
function nftRules(items: NftItem[]): { set: string; packets: number }[] {
  return items
    .filter((item) => item.rule?.chain === 'filter')
    .map((item) => ({
      set: String(item.rule!.expr.find((e) => e.match)?.match?.right ?? '?'),
      packets: item.rule!.expr.find((e) => e.counter)?.counter?.packets ?? 0,
    }));
}

const NFT_SETS = ['hosts4', 'nets4', 'hosts6', 'nets6'];

/** Everything in the namespace's firewall, for failure messages. */
async function firewallText(lab: Lab): Promise<string> {
  const show = async (argv: string[]) => {
    const r = await lab.execServer(argv);
    return `$ ${argv.join(' ')}\n${(r.stdout + r.stderr).trim()}`;
  };
  return [
    await show(['iptables', '-w', '-S', 'INPUT']),
    await show(['ip6tables', '-w', '-S', 'INPUT']),
    await show(['ipset', 'save']),
    await show(['nft', 'list', 'ruleset']),
  ].join('\n');
}

// ---------------------------------------------------------------------------
// one backend's view, so that every scenario reads the same for both

interface Kit {
  readonly kind: Kind;
  /** The targets in floodgate's sets, once per element (a duplicate shows twice). */
  elements(lab: Lab): Promise<Element[]>;
  /** What is wrong with the rest of the setup (sets, rules, table, chain); empty when intact. */
  setupProblems(lab: Lab): Promise<string[]>;
  /** Packets dropped so far by the rule that covers `target`. */
  dropped(lab: Lab, target: string): Promise<number>;
  /** What an administrator does by hand that wipes floodgate's bans. */
  readonly externalFlush: readonly string[];
  /** A second, harsher removal: the pieces the elements hang on. */
  readonly externalBreak: readonly (readonly string[])[];
  /** The set capacity (maxelem / size) of the IPv4 host set. */
  capacity(lab: Lab): Promise<number>;
}

const familyOf = (target: string): Family => (target.includes(':') ? 6 : 4);

const ipsetKit: Kit = {
  kind: 'ipset',
  elements: ipsetElements,
  async setupProblems(lab) {
    const problems: string[] = [];
    const names = await ipsetNames(lab);
    for (const family of [4, 6] as const) {
      if (!names.includes(N.sets[family])) problems.push(`set ${N.sets[family]} is missing`);
      const copies = (await inputRules(lab, family)).filter((line) => line === setRule(family)).length;
      if (copies !== 1) problems.push(`${iptables(family)} INPUT has ${copies} copies of the set rule, want 1`);
    }
    return problems;
  },
  async dropped(lab, target) {
    const family = familyOf(target);
    const listing = (await run(lab, [iptables(family), '-w', '-L', 'INPUT', '-v', '-n', '-x'])).stdout;
    const line = listing.split('\n').find((l) => l.includes(`match-set ${N.sets[family]} src`));
    if (line === undefined) throw new Error(`no ${N.sets[family]} rule in ${iptables(family)} INPUT:\n${listing}`);
    return Number(line.trim().split(/\s+/)[0]);
  },
  externalFlush: ['ipset', 'flush', N.sets[4]],
  // One shell in the namespace, so that no reconcile slips in between and puts the rule back
  // before the set is destroyed.
  externalBreak: [['sh', '-c', `iptables -w -F INPUT && ip6tables -w -F INPUT && ipset destroy ${N.sets[6]}`]],
  async capacity(lab) {
    const header = (await run(lab, ['ipset', 'list', N.sets[4], '-t'])).stdout;
    return Number(/maxelem (\d+)/.exec(header)?.[1]);
  },
};

const nftablesKit: Kit = {
  kind: 'nftables',
  elements: nftElements,
  async setupProblems(lab) {
    const items = await nftTable(lab);
    if (items === null) return [`table inet ${N.table} is missing`];
    const problems: string[] = [];
    const sets = items.flatMap((item) => (item.set ? [item.set.name] : []));
    for (const name of NFT_SETS) if (!sets.includes(name)) problems.push(`set ${name} is missing`);
    const chain = items.find((item) => item.chain?.name === 'filter')?.chain;
    if (chain?.hook !== 'input')
      problems.push(`chain filter is ${chain ? `hooked at ${chain.hook}` : 'missing'}, want hook input`);
    const rules = nftRules(items).map((r) => r.set);
    for (const name of NFT_SETS) {
      const copies = rules.filter((set) => set === `@${name}`).length;
      if (copies !== 1) problems.push(`chain filter has ${copies} rules for @${name}, want 1`);
    }
    if (rules.length !== NFT_SETS.length)
      problems.push(`chain filter has ${rules.length} rules, want ${NFT_SETS.length}`);
    return problems;
  },
  async dropped(lab, target) {
    const set = `@${target.includes('/') ? 'nets' : 'hosts'}${familyOf(target)}`;
    const rule = nftRules((await nftTable(lab)) ?? []).find((r) => r.set === set);
    if (rule === undefined) throw new Error(`no rule for ${set} in table inet ${N.table}`);
    return rule.packets;
  },
  externalFlush: ['nft', 'flush', 'ruleset'],
  externalBreak: [
    ['nft', 'flush', 'chain', 'inet', N.table, 'filter'],
    ['nft', 'delete', 'element', 'inet', N.table, 'nets4', '{ 203.0.113.0/24 }'],
  ],
  async capacity(lab) {
    const items = (await nftTable(lab)) ?? [];
    return Number(items.find((item) => item.set?.name === 'hosts4')?.set?.size);
  },
};

const KITS: Record<Kind, Kit> = { ipset: ipsetKit, nftables: nftablesKit };

/** What each backend leaves in the firewall for an instance, described; empty when it owns nothing. */
async function leftovers(lab: Lab, kind: AnyKind, names: FirewallInstance = N): Promise<string[]> {
  switch (kind) {
    case 'iptables':
      return (await iptablesTargets(lab, names)).map((target) => `iptables rule for ${target}`);
    case 'ipset': {
      const out = (await ipsetNames(lab))
        .filter((name) => name.startsWith(names.sets[4]) || name.startsWith(names.sets[6]))
        .map((name) => `ipset ${name}`);
      for (const family of [4, 6] as const)
        if ((await inputRules(lab, family)).includes(setRule(family, names))) out.push(`${iptables(family)} set rule`);
      return out;
    }
    case 'nftables':
      return (await nftTable(lab, names)) === null ? [] : [`table inet ${names.table}`];
  }
}

const sorted = (values: Iterable<string>) => [...values].sort();

// ---------------------------------------------------------------------------

describe.skipIf(SKIP !== null).each(['ipset', 'nftables'] as const)('the %s backend under floodgate run', (kind) => {
  const kit = KITS[kind];
  const it_ = useLab();
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    // The kernel must support the backend too; say so plainly rather than fail every test.
    const probe = kind === 'ipset' ? ['ipset', 'list', '-n'] : ['nft', 'list', 'tables'];
    const r = await it_.lab.execServer(probe);
    if (r.exitCode !== 0)
      throw new Error(
        `${probe.join(' ')} fails in the lab namespace (no kernel support for ${kind}?): ${r.stderr.trim()}`,
      );
  });

  // The daemons go first (they would repair what is removed), then every rule, set and table, so
  // that the next test starts from an empty firewall whatever this one left.
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((daemon) => daemon.stop('SIGKILL').catch(() => undefined)));
    let lab: Lab;
    try {
      lab = it_.lab;
    } catch {
      return; // the lab never came up
    }
    for (const argv of [
      ['iptables', '-w', '-F', 'INPUT'],
      ['ip6tables', '-w', '-F', 'INPUT'],
      ['ipset', 'destroy'],
      ['nft', 'flush', 'ruleset'],
    ]) {
      await lab.execServer(argv);
    }
  });

  /** A copy of the default policy with this backend, a short reconcile interval and `adjust`. */
  const policyFor = (
    dir: string,
    adjust: (p: PolicyObject) => void = () => {},
    backend: AnyKind = kind,
    name?: string,
  ) =>
    writePolicy(
      dir,
      (p) => {
        p.firewall = { ...(p.firewall as object), backend };
        p.reconcile_interval = `${RECONCILE_MS / 1000}s`;
        adjust(p);
      },
      name,
    );

  const start = async (policy: string, stateDir: string) => {
    const daemon = await Daemon.start(it_.lab, { policy, stateDir });
    daemons.push(daemon);
    return daemon;
  };

  /** Polls until the sets hold exactly `targets`, each once; the failure shows the whole firewall. */
  const expectElements = (
    what: string,
    targets: readonly string[],
    timeoutMs = 3 * INTERVAL_MS + 2000,
    backend: Kit = kit,
  ) => {
    const want = JSON.stringify(sorted(targets));
    let seen = '(nothing read)';
    return waitFor(
      what,
      async () => {
        seen = JSON.stringify(sorted((await backend.elements(it_.lab)).map((e) => e.target)));
        return seen === want;
      },
      { timeoutMs, explain: async () => `want ${want}\nsaw  ${seen}\n${await firewallText(it_.lab)}` },
    );
  };

  const expectSetupIntact = async () => {
    expect(await kit.setupProblems(it_.lab), await firewallText(it_.lab)).toEqual([]);
  };

  const ban = (stateDir: string, args: readonly string[]) =>
    floodgate(it_.lab, ['ban', '--state-dir', stateDir, ...args]);

  it('bans a SYN flood, a flood spread over a /24 and one over an IPv6 /64 into the sets and drops their new SYNs', async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-floods`);
    const stateDir = stateDirIn(dir);
    // The floods are all in place when the daemon starts, so that no ban (and its killing of the
    // half-open sockets) races the lab counting them.
    await lab.synFlood({ sources: [ATTACKER], perSource: 30, port: 80 });
    await lab.synFlood({ sources: SPREAD4, perSource: 5, port: 443 });
    await lab.synFlood({ sources: SPREAD6, perSource: 3, port: 80 });
    const started = Date.now();
    await start(policyFor(dir), stateDir);

    await expectElements(
      'the three floods in the sets',
      [ATTACKER, '203.0.113.0/24', '2001:db8:1::/64'],
      2 * INTERVAL_MS + 3000,
    );
    expect(Date.now() - started).toBeLessThan(2 * INTERVAL_MS + 3000);
    await expectSetupIntact();
    if (kind === 'nftables') {
      // Addresses and networks live in separate sets (an interval set refuses overlaps).
      expect(Object.fromEntries((await kit.elements(lab)).map((e) => [e.target, e.set]))).toEqual({
        [ATTACKER]: 'hosts4',
        '203.0.113.0/24': 'nets4',
        '2001:db8:1::/64': 'nets6',
      });
    }
    const bans = await listBans(lab, stateDir);
    expect(bans.map((b) => [b.target, b.rule, b.count])).toEqual(
      expect.arrayContaining([
        [ATTACKER, 'syn-flood', 30],
        ['203.0.113.0/24', 'syn-flood-subnet', 200],
        ['2001:db8:1::/64', 'syn-flood-subnet', 120],
      ]),
    );
    expect(bans).toHaveLength(3);

    // New SYNs from a banned address and from a new address of the banned /64 never reach the listener.
    const fresh6 = '2001:db8:1::99';
    const before = { v4: await kit.dropped(lab, ATTACKER), v6: await kit.dropped(lab, '2001:db8:1::/64') };
    await lab.synFlood({ sources: [ATTACKER], perSource: 10, port: 80, exact: false, timeoutMs: 3000 });
    await lab.synFlood({ sources: [fresh6], perSource: 5, port: 80, exact: false, timeoutMs: 3000 });
    expect((await kit.dropped(lab, ATTACKER)) - before.v4).toBeGreaterThanOrEqual(10);
    expect((await kit.dropped(lab, '2001:db8:1::/64')) - before.v6).toBeGreaterThanOrEqual(5);
    const halfOpen = await lab.countServer('SYN-RECV');
    expect(halfOpen.get(ATTACKER) ?? 0).toBe(0);
    expect(halfOpen.get(fresh6) ?? 0).toBe(0);
  });

  it('ban --from-file through the running daemon puts every entry of a mixed list in the sets exactly once', async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-file`);
    const stateDir = stateDirIn(dir);
    await start(policyFor(dir), stateDir);
    const first = await ban(stateDir, ['198.51.100.0/24', '2001:db8:5::/64']);
    expect(first.exitCode, first.stderr).toBe(0);

    const file = writeText(
      dir,
      'blocklist.txt',
      [
        '# blocklist exported from the old firewall',
        '203.0.113.7',
        '2001:DB8:7:0:0:0:0:7        # the same address as 2001:db8:7::7, written out',
        '203.0.113.64/26',
        '2001:db8:8::/48',
        '',
        '198.51.100.23               # inside the banned 198.51.100.0/24',
        '2001:db8:5::23              # inside the banned 2001:db8:5::/64',
        '203.0.113.7/32              # listed twice',
        '198.51.100.0/24             # already banned',
      ].join('\n'),
    );
    const r = await ban(stateDir, ['--from-file', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('6 banned, 2 already banned, 0 refused (through the running daemon)');
    expect(r.stdout).toContain('banned 2001:db8:7::7 until');

    const all = [
      '198.51.100.0/24',
      '2001:db8:5::/64',
      '203.0.113.7',
      '2001:db8:7::7',
      '203.0.113.64/26',
      '2001:db8:8::/48',
      '198.51.100.23',
      '2001:db8:5::23',
    ];
    await expectElements('every entry of the list', all);
    await expectSetupIntact();
    expect(sorted((await listBans(lab, stateDir)).map((b) => b.target))).toEqual(sorted(all));
  });

  it('enforces a network inside a banned network and one around it, and keeps them when the outer bans end', async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-nested`);
    const stateDir = stateDirIn(dir);
    const daemon = await start(policyFor(dir), stateDir);
    expect((await ban(stateDir, ['198.51.100.0/24', '2001:db8:5:1::/64'])).exitCode).toBe(0);
    const file = writeText(
      dir,
      'nested.txt',
      '198.51.100.128/25   # inside the banned /24\n2001:db8:5::/48      # around the banned /64\n',
    );
    const r = await ban(stateDir, ['--from-file', file]);
    expect(r.stdout).toContain('2 banned, 0 already banned, 0 refused');
    const all = ['198.51.100.0/24', '198.51.100.128/25', '2001:db8:5:1::/64', '2001:db8:5::/48'];
    expect(sorted((await listBans(lab, stateDir)).map((b) => b.target))).toEqual(sorted(all));

    // floodgate reported all four as banned: the sets must cover all four (a network inside another
    // may lean on the outer element), with no error logged.
    let uncovered: string[] = [];
    await waitFor(
      'every ban covered by an element of the sets',
      async () => {
        const elements = (await kit.elements(lab)).map((e) => parseCidr(e.target)!);
        uncovered = all.filter((target) => !elements.some((element) => cidrContains(element, parseCidr(target)!)));
        return uncovered.length === 0;
      },
      {
        timeoutMs: 3 * INTERVAL_MS + 2000,
        explain: async () => `not covered: ${uncovered.join(', ')}\n${await firewallText(lab)}`,
      },
    );
    // The part of the /48 outside the /64 is dropped too.
    const outside = '2001:db8:5:2::1';
    await lab.synFlood({ sources: [outside], perSource: 3, port: 80, exact: false, timeoutMs: 3000 });
    expect((await lab.countServer('SYN-RECV')).get(outside) ?? 0, await firewallText(lab)).toBe(0);

    // The outer bans end: the inner ones still hold, each as its own element.
    const lifted = await floodgateOk(lab, [
      'unban',
      '--grace',
      '0',
      '--state-dir',
      stateDir,
      '198.51.100.0/24',
      '2001:db8:5::/48',
    ]);
    expect(lifted.stdout).toContain('lifted 198.51.100.0/24');
    await expectElements('the inner bans on their own', ['198.51.100.128/25', '2001:db8:5:1::/64']);
    expect(sorted((await listBans(lab, stateDir)).map((b) => b.target))).toEqual([
      '198.51.100.128/25',
      '2001:db8:5:1::/64',
    ]);
    expect(daemon.events.filter((e) => e.event === 'error')).toEqual([]);
  });

  it('after kill -9 and a restart every ban is in the sets exactly once, with the same expiry', async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-kill`);
    const stateDir = stateDirIn(dir);
    const policy = policyFor(dir);
    const first = await start(policy, stateDir);
    const targets = ['198.51.100.9', '203.0.113.0/24', '2001:db8:3::3', '2001:db8:4::/64'];
    expect((await ban(stateDir, targets)).exitCode).toBe(0);
    await expectElements('the bans before the crash', targets);
    const before = await listBans(lab, stateDir);

    expect(await first.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    // The kernel keeps the elements while no floodgate runs; one is lost as if the crash came
    // between saving the ban and committing it.
    await expectElements('the bans while no daemon runs', targets, 1000);
    await run(
      lab,
      kind === 'ipset'
        ? ['ipset', 'del', N.sets[6], '2001:db8:3::3']
        : ['nft', 'delete', 'element', 'inet', N.table, 'hosts6', '{ 2001:db8:3::3 }'],
    );

    const second = await start(policy, stateDir);
    expect(second.events[0]).toMatchObject({ event: 'start', backend: kind, activeBans: 4 });
    await expectElements('the bans after the restart', targets);
    await expectSetupIntact();
    const after: ListedBan[] = await listBans(lab, stateDir);
    expect(after).toEqual(before);
  });

  it(`repairs an external ${kit.externalFlush.join(' ')} within a few seconds, table, sets, rules and elements`, async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-repair`);
    const stateDir = stateDirIn(dir);
    const daemon = await start(policyFor(dir), stateDir);
    const targets = ['198.51.100.9', '198.51.100.77', '203.0.113.0/24', '2001:db8:3::3', '2001:db8:4::/64'];
    expect((await ban(stateDir, targets)).exitCode).toBe(0);
    await expectElements('the bans', targets);

    const budget = RECONCILE_MS + 2 * INTERVAL_MS + 1500;
    for (const step of [[kit.externalFlush], kit.externalBreak]) {
      const reconciles = daemon.events.filter((e) => e.event === 'reconcile').length;
      for (const argv of step) await run(lab, [...argv]);
      const broken = Date.now();
      await expectElements(
        `every element back after ${step.map((argv) => argv.join(' ')).join('; ')}`,
        targets,
        budget,
      );
      await waitFor('the whole setup back', async () => (await kit.setupProblems(lab)).length === 0, {
        timeoutMs: budget,
        explain: () => firewallText(lab),
      });
      expect(Date.now() - broken).toBeLessThan(budget);
      // The daemon saw the damage (reconcile logs only what it had to put back).
      expect(daemon.events.filter((e) => e.event === 'reconcile').length).toBeGreaterThan(reconciles);
    }
    expect(sorted((await listBans(lab, stateDir)).map((b) => b.target))).toEqual(sorted(targets));
  });

  it('removes expired elements itself, within two intervals of expiresAt, long before the kernel timeout', async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-ttl`);
    const stateDir = stateDirIn(dir);
    const daemon = await start(
      policyFor(dir, (p) => {
        p.ban = { ...p.ban, ttl: '3s' };
      }),
      stateDir,
    );
    const targets = ['203.0.113.50', '2001:db8:9::/64'];
    const asked = Date.now();
    const r = await ban(stateDir, targets);
    const answered = Date.now();
    expect(r.exitCode).toBe(0);
    // "banned 203.0.113.50 until 2026-…Z": the policy's ttl, 3s from the moment of the ban.
    const until = [...r.stdout.matchAll(/^banned \S+ until (\S+)$/gm)].map((m) => Date.parse(m[1]!));
    expect(until).toHaveLength(2);
    for (const at of until) {
      expect(at).toBeGreaterThanOrEqual(asked + 3000);
      expect(at).toBeLessThanOrEqual(answered + 3000);
    }
    const expiresAt = Math.max(...until);

    const elements = await kit.elements(lab);
    expect(sorted(elements.map((e) => e.target))).toEqual(sorted(targets));
    // The kernel would keep them for minutes: the timeout is only a safety net.
    for (const element of elements) expect(element.timeoutS, element.target).toBeGreaterThan(60);
    // The logged command is the one applied, safety-net timeout included (`timeout 0` would be permanent),
    // shell-quoted as every logged command is: nft's braces are words of their own.
    const kernelTimeout = 3 + SAFETY_MARGIN_S;
    expect(daemon.events.find((e) => e.event === 'ban' && e.target === targets[0])?.command).toBe(
      kind === 'ipset'
        ? `ipset add ${N.sets[4]} ${targets[0]} timeout ${kernelTimeout} -exist`
        : `nft add element inet ${N.table} hosts4 '{' ${targets[0]} timeout ${kernelTimeout}s '}'`,
    );

    await waitFor('the expired elements to be removed', async () => (await kit.elements(lab)).length === 0, {
      timeoutMs: expiresAt + 2 * INTERVAL_MS + 500 - Date.now(),
      explain: () => firewallText(lab),
    });
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    expect(await listBans(lab, stateDir)).toEqual([]);
    expect(sorted(daemon.events.filter((e) => e.event === 'expire').map((e) => String(e.target)))).toEqual(
      sorted(targets),
    );
  });

  it('with ban.max_active 3, bans 3 of 5, refuses 2 loudly and counts them; raising the limit resizes the sets', async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-full`);
    const stateDir = stateDirIn(dir);
    const policy = policyFor(dir, (p) => {
      p.ban = { ...p.ban, max_active: 3 };
    });
    const daemon = await start(policy, stateDir);
    expect(await kit.capacity(lab)).toBe(3);

    const accepted = ['198.51.100.31', '2001:db8:3::31', '203.0.113.0/26'];
    const refused = ['198.51.100.32', '2001:db8:4::/64'];
    const r = await ban(stateDir, [...accepted, ...refused]);
    expect(r.exitCode).toBe(1);
    for (const target of refused) expect(r.stdout).toContain(`refused ${target}: ban.max_active (3) bans are active`);
    expect(r.stdout).toContain('3 banned, 0 already banned, 2 refused (through the running daemon)');

    await expectElements('the three accepted bans', accepted);
    expect(sorted((await listBans(lab, stateDir)).map((b) => b.target))).toEqual(sorted(accepted));
    const status = JSON.parse((await floodgateOk(lab, ['status', '--json', '--state-dir', stateDir])).stdout) as {
      active: number;
      refused: number;
      backend: string;
      daemon: { pid: number; memory: { rss: number; heapUsed: number } };
    };
    expect(status).toMatchObject({ active: 3, refused: 2, backend: kind });
    // The daemon answers with its own memory, as /proc sees it.
    expect(status.daemon.memory.heapUsed).toBeGreaterThan(1 << 20);
    expect(status.daemon.memory.rss).toBeGreaterThan(status.daemon.memory.heapUsed);
    expect(daemon.events.filter((e) => e.event === 'refused').map((e) => [e.target, e.why])).toEqual(
      refused.map((t) => [t, 'max_active']),
    );

    // What the message suggests: raise ban.max_active. The sets grow; nothing already banned is lost.
    await daemon.stop('SIGTERM');
    const raised = policyFor(dir, (p) => {
      p.ban = { ...p.ban, max_active: 5 };
    });
    await start(raised, stateDir);
    await expectElements('the accepted bans after the resize', accepted);
    expect(await kit.capacity(lab)).toBe(5);
    const again = await ban(stateDir, refused);
    expect(again.exitCode, again.stdout + again.stderr).toBe(0);
    await expectElements('all five bans', [...accepted, ...refused]);
    await expectSetupIntact();
  });

  const other: Kind = kind === 'ipset' ? 'nftables' : 'ipset';
  it(`moves every ban iptables -> ${kind} -> ${other} -> iptables when firewall.backend changes, leaving nothing behind`, async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-switch`);
    const stateDir = stateDirIn(dir);
    const targets = [
      '198.51.100.9',
      '198.51.100.0/24',
      '198.51.100.23',
      '203.0.113.128/25',
      '2001:db8:3::3',
      '2001:db8:4::/64',
    ];

    let daemon = await start(policyFor(dir, undefined, 'iptables'), stateDir);
    expect((await ban(stateDir, targets)).exitCode).toBe(0);
    await waitFor(
      'the iptables rules',
      async () => JSON.stringify(await iptablesTargets(lab)) === JSON.stringify(sorted(targets)),
      {
        timeoutMs: 3000,
        explain: () => firewallText(lab),
      },
    );
    const before = await listBans(lab, stateDir);

    let from: AnyKind = 'iptables';
    for (const to of [kind, other, 'iptables'] as const) {
      await daemon.stop('SIGTERM');
      daemon = await start(policyFor(dir, undefined, to), stateDir);
      await daemon.waitForEvent(`the migration from ${from}`, (e) => e.event === 'migrate');
      expect(daemon.events.find((e) => e.event === 'migrate')).toMatchObject({ from: [from], to });
      if (to === 'iptables') {
        await waitFor(
          'every ban back as iptables rules',
          async () => JSON.stringify(await iptablesTargets(lab)) === JSON.stringify(sorted(targets)),
          {
            timeoutMs: 3000,
            explain: () => firewallText(lab),
          },
        );
      } else {
        await expectElements(`every ban in ${to}`, targets, undefined, KITS[to]);
        expect(await KITS[to].setupProblems(lab), await firewallText(lab)).toEqual([]);
        expect(await leftovers(lab, 'iptables')).toEqual([]);
      }
      for (const gone of (['iptables', 'ipset', 'nftables'] as const).filter((k) => k !== to)) {
        expect(await leftovers(lab, gone), `${gone} after moving to ${to}:\n${await firewallText(lab)}`).toEqual([]);
      }
      from = to;
    }
    // Three moves later, the bans are the same bans: same targets, same expiry.
    expect(await listBans(lab, stateDir)).toEqual(before);
  });

  it('flush --enforce through a running daemon clears every ban for good; with no daemon it removes the sets or table and the rules', async () => {
    const { lab } = it_;
    const dir = tempDir(`${kind}-flush`);
    const stateDir = stateDirIn(dir);
    const policy = policyFor(dir);
    const targets = ['198.51.100.9', '203.0.113.0/24', '2001:db8:3::3', '2001:db8:4::/64'];
    const daemon = await start(policy, stateDir);
    expect((await ban(stateDir, targets)).exitCode).toBe(0);
    await expectElements('the bans', targets);

    // Through the daemon: the bans and elements go and stay gone, and the empty sets or table the
    // daemon bans into are back at once (a flood during the flush must still be bannable).
    const mark = daemon.events.length;
    const through = await floodgateOk(lab, ['flush', '--enforce', '--state-dir', stateDir]);
    expect(through.stdout).toContain('flushed: 4 ban(s) cleared');
    expect(await kit.elements(lab)).toEqual([]);
    await expectSetupIntact();
    await sleep(RECONCILE_MS + 2 * INTERVAL_MS);
    expect(await kit.elements(lab)).toEqual([]);
    expect(
      daemon.events.filter(
        (e) => e.event === 'reconcile' && daemon.events.indexOf(e) >= mark && Number(e.missing ?? 0) > 0,
      ),
    ).toEqual([]);

    // With no daemon: everything floodgate made goes.
    expect((await ban(stateDir, targets)).exitCode).toBe(0);
    await expectElements('the bans again', targets);
    await daemon.stop('SIGTERM');
    const r = await floodgateOk(lab, ['flush', '--enforce', '--policy', policy, '--state-dir', stateDir]);
    expect(r.stdout).toContain('flushed: 4 ban(s) cleared');
    expect(await leftovers(lab, kind), await firewallText(lab)).toEqual([]);
    expect(await leftovers(lab, 'iptables')).toEqual([]);
    expect(await listBans(lab, stateDir)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------

describe.skipIf(SKIP !== null)('two floodgates with different state directories in one namespace', () => {
  const it_ = useLab();
  const daemons: Daemon[] = [];

  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((daemon) => daemon.stop('SIGKILL').catch(() => undefined)));
    let lab: Lab;
    try {
      lab = it_.lab;
    } catch {
      return;
    }
    for (const argv of [
      ['iptables', '-w', '-F', 'INPUT'],
      ['ip6tables', '-w', '-F', 'INPUT'],
      ['ipset', 'destroy'],
      ['nft', 'flush', 'ruleset'],
    ])
      await lab.execServer(argv);
  });

  /** The targets an instance's rules or elements cover, sorted. */
  const owned = async (kind: AnyKind, names: FirewallInstance): Promise<string[]> => {
    const { lab } = it_;
    if (kind === 'iptables') return iptablesTargets(lab, names);
    return sorted(
      (kind === 'ipset' ? await ipsetElements(lab, names) : await nftElements(lab, names)).map((e) => e.target),
    );
  };

  /** What is missing of an instance's setup besides its elements (the set rules, the table). */
  const setupMissing = async (kind: AnyKind, names: FirewallInstance): Promise<string[]> => {
    const { lab } = it_;
    if (kind === 'iptables') return [];
    if (kind === 'nftables') return (await nftTable(lab, names)) === null ? [`table inet ${names.table}`] : [];
    const problems: string[] = [];
    const sets = await ipsetNames(lab);
    for (const family of [4, 6] as const) {
      if (!sets.includes(names.sets[family])) problems.push(`set ${names.sets[family]}`);
      const copies = (await inputRules(lab, family)).filter((line) => line === setRule(family, names)).length;
      if (copies !== 1) problems.push(`${copies} copies of ${setRule(family, names)}`);
    }
    return problems;
  };

  it.each(['iptables', 'ipset', 'nftables'] as const)(
    '%s: each keeps its own bans through several reconciles, and flush of one leaves the others’ rules',
    async (kind) => {
      const { lab } = it_;
      const dir = tempDir(`${kind}-instances`);
      const policy = writePolicy(dir, (p) => {
        p.firewall = { ...(p.firewall as object), backend: kind };
        p.reconcile_interval = `${RECONCILE_MS / 1000}s`;
      });
      // No instance id up front: each floodgate makes its own.
      const [dirA, dirB, dirC] = ['a', 'b', 'c'].map((name) => stateDirIn(join(dir, name), null)) as [
        string,
        string,
        string,
      ];
      const bans: Record<string, string[]> = {
        [dirA]: ['198.51.100.10', '203.0.113.0/25', '2001:db8:a::1'],
        [dirB]: ['198.51.100.20', '203.0.113.128/25', '2001:db8:b::/64'],
        // A manual ban with no daemon on its state directory, next to the two daemons.
        [dirC]: ['198.51.100.30', '2001:db8:c::3'],
      };
      const a = await Daemon.start(lab, { policy, stateDir: dirA });
      const b = await Daemon.start(lab, { policy, stateDir: dirB });
      daemons.push(a, b);
      for (const stateDir of [dirA, dirB, dirC])
        await floodgateOk(lab, ['ban', '--enforce', '--policy', policy, '--state-dir', stateDir, ...bans[stateDir]!]);
      const names = Object.fromEntries(
        [dirA, dirB, dirC].map((stateDir) => [
          stateDir,
          firewallInstance(readFileSync(join(stateDir, 'instance-id'), 'utf8').trim()),
        ]),
      );
      expect(new Set(Object.values(names).map((n) => n.tag)).size).toBe(3);

      const expectOwned = async (what: string, want: Record<string, string[]>) => {
        let seen = '';
        await waitFor(
          what,
          async () => {
            const now: Record<string, string[]> = {};
            for (const stateDir of Object.keys(want)) now[names[stateDir]!.tag] = await owned(kind, names[stateDir]!);
            seen = JSON.stringify(now);
            return Object.keys(want).every(
              (stateDir) => JSON.stringify(now[names[stateDir]!.tag]) === JSON.stringify(sorted(want[stateDir]!)),
            );
          },
          {
            timeoutMs: 3 * INTERVAL_MS + 2000,
            explain: async () =>
              `want ${JSON.stringify(Object.fromEntries(Object.entries(want).map(([d, t]) => [names[d]!.tag, sorted(t)])))}\nsaw  ${seen}\n${await firewallText(lab)}`,
          },
        );
      };
      await expectOwned('each instance’s bans under its own name', bans);

      // Several reconciles of both daemons: nothing of the other instances is taken for unexplained.
      const reconciled = (daemon: Daemon) =>
        daemon.events.filter((e) => e.event === 'reconcile-done' || e.event === 'reconcile').length;
      await sleep(3 * RECONCILE_MS + INTERVAL_MS);
      await expectOwned('every ban still there after several reconciles', bans);
      for (const daemon of [a, b]) {
        expect(
          daemon.events.filter((e) => e.event === 'reconcile' && Number(e.extra ?? 0) > 0),
          daemon.logTail(),
        ).toEqual([]);
        expect(daemon.events.filter((e) => e.event === 'error')).toEqual([]);
        expect(reconciled(daemon)).toBe(0);
      }
      for (const stateDir of [dirA, dirB, dirC]) {
        const listed = await listBans(lab, stateDir);
        expect(sorted(listed.map((ban) => ban.target))).toEqual(sorted(bans[stateDir]!));
        expect(listed.every((ban) => !ban.dryRun)).toBe(true);
      }
      for (const stateDir of [dirA, dirB]) expect(await setupMissing(kind, names[stateDir]!)).toEqual([]);
      // status of the directory with no daemon counts the direct ban --enforce as enforced (the
      // policy's mode is dry-run) and names the tag its rules carry.
      // No daemon there: status says so with exit code 1, and prints the same information.
      const directRun = await floodgate(lab, ['status', '--json', '--state-dir', dirC]);
      expect(directRun.exitCode).toBe(1);
      const direct = JSON.parse(directRun.stdout) as Record<string, unknown>;
      expect(direct).toMatchObject({
        stateDir: dirC,
        daemon: null,
        mode: 'dry-run',
        active: 2,
        bans: { enforce: 2, dryRun: 0 },
        tag: names[dirC]!.tag,
      });

      // flush of B through its daemon: B's bans go, A's and C's stay, also through more reconciles.
      await floodgateOk(lab, ['flush', '--enforce', '--state-dir', dirB]);
      await expectOwned('B flushed, A and C untouched', { [dirA]: bans[dirA]!, [dirB]: [], [dirC]: bans[dirC]! });
      await sleep(RECONCILE_MS + INTERVAL_MS);
      await expectOwned('A and C still untouched after B’s next reconcile', {
        [dirA]: bans[dirA]!,
        [dirB]: [],
        [dirC]: bans[dirC]!,
      });

      // flush of A with no daemon: all A made goes, B's setup and C's bans stay.
      await a.stop('SIGTERM');
      await floodgateOk(lab, ['flush', '--enforce', '--policy', policy, '--state-dir', dirA]);
      expect(await leftovers(lab, kind, names[dirA]!), await firewallText(lab)).toEqual([]);
      await expectOwned('C untouched by A’s flush', { [dirA]: [], [dirB]: [], [dirC]: bans[dirC]! });
      expect(await setupMissing(kind, names[dirB]!)).toEqual([]);
      expect(sorted((await listBans(lab, dirC)).map((ban) => ban.target))).toEqual(sorted(bans[dirC]!));
    },
  );
});
