// The detector on the real captured tables with the shipped default policy: who gets banned, who
// never does, and when a flood is only reported because nobody can be banned for it.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type BanVerdict, type DetectContext, type Verdict, detect as detectTable } from '../../src/detect/detector.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { CidrSet } from '../../src/net/cidr-set.js';
import { loadPolicy, parsePolicy } from '../../src/policy/load-policy.js';
import type { Policy } from '../../src/policy/schema.js';
import { type FloodCounters, counterRates, parseKernelCounters } from '../../src/table/kernel-counters.js';
import type { SocketRow } from '../../src/table/socket-row.js';
import { SocketTable } from '../../src/table/socket-table.js';
import { ALL_FORMATS, SCENARIOS, fixtureText, procAllRows, rowsOf } from '../table/fixture-tables.js';

const NOW = 1_764_420_548_929;
const defaultPolicy = loadPolicy(fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))).policy;
const defaultAllowlist = buildAllowlist(defaultPolicy.allowlist, []);

/** The detector on rows, in the table form the parsers give it. */
const detect = (
  snapshot: { rows: readonly SocketRow[]; counterRates?: FloodCounters },
  policy: Policy,
  now: number,
  context: DetectContext,
) => detectTable({ ...snapshot, rows: SocketTable.from(snapshot.rows) }, policy, now, context);

/** The default policy with some rules' thresholds or other fields changed. */
function policyWith(changes: Partial<Policy>): Policy {
  return { ...defaultPolicy, ...changes };
}

const bans = (verdicts: readonly Verdict[]) =>
  verdicts
    .filter((v): v is BanVerdict => v.kind === 'ban')
    .map((v) => `${v.target} ${v.rule} ${v.count}>${v.threshold}`)
    .sort();

const MIXED_BANS = [
  '198.51.100.66 syn-flood 30>20',
  '198.51.100.77 http-flood 120>100',
  '2001:db8:1::/64 syn-flood-subnet 120>100',
  '2001:db8:2::66 syn-flood 25>20',
  '203.0.113.0/24 syn-flood-subnet 200>100',
];

describe('the mixed attack with the default policy', () => {
  const rows = procAllRows('mixed');
  const verdicts = detect({ rows }, defaultPolicy, NOW, { allowlist: defaultAllowlist });

  it('bans the two SYN flooders, the two flooding networks and the HTTP flooder, and nobody else', () => {
    expect(bans(verdicts)).toEqual(MIXED_BANS);
    expect(verdicts.every((v) => v.kind === 'ban')).toBe(true);
  });

  it('never bans the normal clients, the TIME_WAIT client or the heavy client under its limits', () => {
    const targets = verdicts.map((v) => (v.kind === 'ban' ? v.target : ''));
    for (const client of [
      '198.51.100.10',
      '198.51.100.14',
      '198.51.100.15',
      '2001:db8:3::10',
      '198.51.100.200',
      '198.51.100.0/24',
      '2001:db8:3::/64',
    ]) {
      expect(targets).not.toContain(client);
    }
  });

  it('does not ban the single sources of a network it bans whole', () => {
    // 203.0.113.1..40 hold 5 each: only their /24 is over a limit.
    const targets = verdicts.map((v) => (v.kind === 'ban' ? v.target : ''));
    expect(targets.filter((t) => t.startsWith('203.0.113.') && !t.includes('/'))).toEqual([]);
    expect(targets.filter((t) => t.startsWith('2001:db8:1:') && !t.includes('/'))).toEqual([]);
  });

  it.each(ALL_FORMATS)('comes to the same verdicts when the table was captured as %s', (format) => {
    expect(
      bans(detect({ rows: rowsOf('mixed', format) }, defaultPolicy, NOW, { allowlist: defaultAllowlist })),
    ).toEqual(MIXED_BANS);
  });

  it('stamps every verdict with the `now` it was given', () => {
    expect(verdicts.map((v) => v.at)).toEqual(Array(5).fill(NOW));
    expect(detect({ rows }, defaultPolicy, 42, { allowlist: defaultAllowlist }).map((v) => v.at)).toEqual(
      Array(5).fill(42),
    );
  });

  it('is pure: the same input gives the same verdicts, in the same order, and the input is left as it was', () => {
    const table = SocketTable.from(rows);
    const suppressed = CidrSet.parse(['198.51.100.66']);
    const first = detectTable({ rows: table }, defaultPolicy, NOW, { allowlist: defaultAllowlist, suppressed });
    const second = detectTable({ rows: table }, defaultPolicy, NOW, { allowlist: defaultAllowlist, suppressed });
    expect(second).toEqual(first);
    expect(bans(first)).toEqual(MIXED_BANS.filter((ban) => !ban.startsWith('198.51.100.66 ')));
    expect(table.toRows()).toEqual(rows);
    expect(detectTable({ rows: table }, defaultPolicy, NOW, { allowlist: defaultAllowlist })).toEqual(verdicts);
  });
});

describe('the quiet server', () => {
  it.each(ALL_FORMATS)('gets no verdict at all from %s', (format) => {
    expect(detect({ rows: rowsOf('quiet', format) }, defaultPolicy, NOW, { allowlist: defaultAllowlist })).toEqual([]);
  });

  it('gets no verdict with its UDP sockets and its unchanged kernel counters either', () => {
    const counters = parseKernelCounters(fixtureText('cookies', 'netstat-counters-before.txt'));
    const snapshot = { rows: procAllRows('quiet'), counterRates: counterRates(counters, counters, 5) };
    expect(detect(snapshot, defaultPolicy, NOW, { allowlist: defaultAllowlist })).toEqual([]);
  });
});

describe('the allowlist', () => {
  // With http-flood at 50, the heavy client's 60 connections to :80 are over the limit.
  const strictHttp = policyWith({
    rules: defaultPolicy.rules.map((rule) => (rule.name === 'http-flood' ? { ...rule, threshold: 50 } : rule)),
  });
  const rows = procAllRows('mixed');

  it('is what keeps the heavy client 198.51.100.200 from being banned', () => {
    const without = detect({ rows }, strictHttp, NOW, { allowlist: defaultAllowlist });
    expect(bans(without)).toContain('198.51.100.200 http-flood 60>50');
    const allowlist = buildAllowlist([...strictHttp.allowlist, '198.51.100.200'], []);
    const withIt = detect({ rows }, strictHttp, NOW, { allowlist });
    expect(bans(withIt)).toEqual([
      '198.51.100.66 syn-flood 30>20',
      '198.51.100.77 http-flood 120>50',
      '2001:db8:1::/64 syn-flood-subnet 120>100',
      '2001:db8:2::66 syn-flood 25>20',
      '203.0.113.0/24 syn-flood-subnet 200>100',
    ]);
  });

  it('covers the heavy client when it is allowlisted by its network or as a mapped address', () => {
    for (const entry of ['198.51.100.192/26', '::ffff:198.51.100.200']) {
      const verdicts = detect({ rows }, strictHttp, NOW, { allowlist: buildAllowlist([entry], []) });
      expect(
        bans(verdicts).filter((ban) => ban.startsWith('198.51.100.200 ')),
        entry,
      ).toEqual([]);
    }
  });

  it('is matched by address: allowlisting 198.51.100.6 or 198.51.100.7 does not spare 198.51.100.66 or .77', () => {
    const verdicts = detect({ rows }, defaultPolicy, NOW, {
      allowlist: buildAllowlist(['198.51.100.6', '198.51.100.7'], []),
    });
    expect(bans(verdicts)).toEqual(MIXED_BANS);
  });

  it('spares a network holding an allowlisted address from a per-network ban, yet still judges its other sources one by one', () => {
    const perNetEstablished = parsePolicy(
      `rules:
  - name: busy-subnet
    states: [ESTABLISHED]
    per: net
    threshold: 50
  - name: http-flood
    ports: [80, 443]
    states: [ESTABLISHED]
    threshold: 100
`,
      'policy.yaml',
    );
    // 198.51.100.0/24 holds 195 ESTABLISHED: 120 of .77, 60 of .200, 15 of the normal clients. .77
    // is flagged by http-flood, so the network counts only the other 75 (from six sources).
    const without = detect({ rows }, perNetEstablished, NOW, { allowlist: defaultAllowlist });
    expect(bans(without)).toEqual(['198.51.100.0/24 busy-subnet 75>50', '198.51.100.77 http-flood 120>100']);
    const allowlist = buildAllowlist(['198.51.100.200'], []);
    const withIt = detect({ rows }, perNetEstablished, NOW, { allowlist });
    expect(bans(withIt)).toEqual(['198.51.100.77 http-flood 120>100']);
  });

  it('spares a network that lies inside an allowlisted one', () => {
    const verdicts = detect({ rows }, defaultPolicy, NOW, {
      allowlist: buildAllowlist(['203.0.0.0/16', '2001:db8::/32'], []),
    });
    expect(bans(verdicts)).toEqual(['198.51.100.66 syn-flood 30>20', '198.51.100.77 http-flood 120>100']);
  });

  it('never bans loopback or link-local, even when they flood', () => {
    const flood = Array.from({ length: 50 }, (_, i) => [
      { proto: 'tcp' as const, state: 'SYN_RECV' as const, localPort: 80, remote: '127.0.0.2', remotePort: 40000 + i },
      { proto: 'tcp' as const, state: 'SYN_RECV' as const, localPort: 80, remote: 'fe80::2', remotePort: 40000 + i },
      { proto: 'tcp' as const, state: 'SYN_RECV' as const, localPort: 80, remote: '::1', remotePort: 40000 + i },
    ]).flat();
    expect(detect({ rows: flood }, defaultPolicy, NOW, { allowlist: defaultAllowlist })).toEqual([]);
  });
});

describe('suppressed targets (active and queued bans)', () => {
  const rows = procAllRows('mixed');

  it('are not banned again', () => {
    const suppressed = CidrSet.parse(['198.51.100.66', '203.0.113.0/24', '2001:db8:2::66']);
    const verdicts = detect({ rows }, defaultPolicy, NOW, { allowlist: defaultAllowlist, suppressed });
    expect(bans(verdicts)).toEqual(['198.51.100.77 http-flood 120>100', '2001:db8:1::/64 syn-flood-subnet 120>100']);
  });

  it('are left out of the counts, so a partly banned network can fall below its limit', () => {
    // 203.0.113.0/27 holds .1 to .31: 155 of the /24's 200 half-open connections; 45 remain.
    const suppressed = CidrSet.parse(['203.0.113.0/27']);
    const verdicts = detect({ rows }, defaultPolicy, NOW, { allowlist: defaultAllowlist, suppressed });
    expect(bans(verdicts)).toEqual(MIXED_BANS.filter((ban) => !ban.startsWith('203.0.113.0/24')));
    const lower = policyWith({
      rules: defaultPolicy.rules.map((rule) => (rule.per === 'net' ? { ...rule, threshold: 40 } : rule)),
    });
    expect(bans(detect({ rows }, lower, NOW, { allowlist: defaultAllowlist, suppressed }))).toContain(
      '203.0.113.0/24 syn-flood-subnet 45>40',
    );
  });

  it('matches a mapped source against its IPv4 ban', () => {
    const suppressed = CidrSet.parse(['::ffff:198.51.100.66']);
    const verdicts = detect({ rows }, defaultPolicy, NOW, { allowlist: defaultAllowlist, suppressed });
    expect(bans(verdicts)).toEqual(MIXED_BANS.filter((ban) => !ban.startsWith('198.51.100.66 ')));
  });
});

describe('a spoofed SYN flood under SYN cookies (the cookies capture)', () => {
  const before = parseKernelCounters(fixtureText('cookies', 'netstat-counters-before.txt'));
  const after = parseKernelCounters(fixtureText('cookies', 'netstat-counters-after.txt'));
  // 135 cookies in 5 s: 27 per second.
  const rates = counterRates(before, after, 5);
  const rows = procAllRows('cookies');
  const alert = policyWith({ flood_signal: { syncookies_per_second: 20, drops_per_second: 20, syn_recv_total: 60 } });

  it('bans nobody: each spoofed source holds one half-open connection at most', () => {
    expect(detect({ rows, counterRates: rates }, defaultPolicy, NOW, { allowlist: defaultAllowlist })).toEqual([]);
  });

  it('is reported as an attack, with its reasons, when the cookie rate and the half-open total cross the flood signal', () => {
    expect(detect({ rows, counterRates: rates }, alert, NOW, { allowlist: defaultAllowlist })).toEqual([
      { kind: 'attack', reasons: ['27 SYN cookies/s sent', '65 half-open connections'], synRecvTotal: 65, at: NOW },
    ]);
  });

  it('is reported from the cookie rate alone when the half-open total stays low', () => {
    const cookiesOnly = policyWith({
      flood_signal: { syncookies_per_second: 20, drops_per_second: 20, syn_recv_total: 1000 },
    });
    expect(detect({ rows, counterRates: rates }, cookiesOnly, NOW, { allowlist: defaultAllowlist })).toEqual([
      { kind: 'attack', reasons: ['27 SYN cookies/s sent'], synRecvTotal: 65, at: NOW },
    ]);
  });

  it('is reported from listen-queue drops too', () => {
    const dropping = { ...rates, ListenDrops: 15, TCPReqQFullDrop: 10 };
    const dropsOnly = policyWith({
      flood_signal: { syncookies_per_second: 1000, drops_per_second: 20, syn_recv_total: 1000 },
    });
    expect(detect({ rows, counterRates: dropping }, dropsOnly, NOW, { allowlist: defaultAllowlist })).toEqual([
      { kind: 'attack', reasons: ['25 SYNs/s dropped by full listen queues'], synRecvTotal: 65, at: NOW },
    ]);
  });

  it('is not reported without counter rates when the half-open total is under the signal', () => {
    const highTotal = policyWith({
      flood_signal: { syncookies_per_second: 20, drops_per_second: 20, syn_recv_total: 66 },
    });
    expect(detect({ rows }, highTotal, NOW, { allowlist: defaultAllowlist })).toEqual([]);
  });

  it('does not call the leftover half-open connections of sources banned already an attack', () => {
    // Right after the mixed flood's sources are banned, their 375 SYN_RECV linger until they time out.
    const mixed = procAllRows('mixed');
    const halfOpenSignal = policyWith({
      flood_signal: { syncookies_per_second: 1000, drops_per_second: 1000, syn_recv_total: 300 },
    });
    const banned = CidrSet.parse([
      '198.51.100.66',
      '198.51.100.77',
      '203.0.113.0/24',
      '2001:db8:1::/64',
      '2001:db8:2::66',
    ]);
    expect(detect({ rows: mixed }, halfOpenSignal, NOW, { allowlist: defaultAllowlist, suppressed: banned })).toEqual(
      [],
    );
    // The same half-open connections from sources nobody banned are an attack.
    const unbannable = policyWith({ ...halfOpenSignal, rules: [{ ...defaultPolicy.rules[0]!, threshold: 1000 }] });
    expect(detect({ rows: mixed }, unbannable, NOW, { allowlist: defaultAllowlist })).toEqual([
      { kind: 'attack', reasons: ['375 half-open connections'], synRecvTotal: 375, at: NOW },
    ]);
  });

  it('gives no attack verdict while there is someone to ban', () => {
    const verdicts = detect({ rows: procAllRows('mixed'), counterRates: rates }, alert, NOW, {
      allowlist: defaultAllowlist,
    });
    expect(bans(verdicts)).toEqual(MIXED_BANS);
    expect(verdicts.filter((v) => v.kind === 'attack')).toEqual([]);
  });
});

describe('every scenario', () => {
  it.each(SCENARIOS)('%s: only the mixed attack leads to bans with the default policy', (scenario) => {
    const verdicts = detect({ rows: procAllRows(scenario) }, defaultPolicy, NOW, { allowlist: defaultAllowlist });
    expect(verdicts.length > 0).toBe(scenario === 'mixed');
  });
});

describe('per-net rules and the sources per-ip rules flag (no collateral bans)', () => {
  type State = 'SYN_RECV' | 'ESTABLISHED';
  /** `count` sockets from `remote` in `state` to local port 80. */
  const sockets = (remote: string, count: number, state: State = 'SYN_RECV'): SocketRow[] =>
    Array.from({ length: count }, (_, i) => ({
      proto: 'tcp' as const,
      state,
      localPort: 80,
      remote,
      remotePort: 10_000 + i,
    }));
  /** `perSource` sockets from each of prefix+from .. prefix+to. */
  const spread = (
    prefix: string,
    from: number,
    to: number,
    perSource: number,
    state: State = 'SYN_RECV',
  ): SocketRow[] =>
    Array.from({ length: to - from + 1 }, (_, i) => sockets(`${prefix}${from + i}`, perSource, state)).flat();
  const judge = (
    rows: SocketRow[],
    policy: Policy = defaultPolicy,
    context: DetectContext = { allowlist: defaultAllowlist },
  ) => bans(detect({ rows }, policy, NOW, context));

  it('bans one heavy source as its address only, not its /24 (253 neighbours did nothing)', () => {
    expect(judge(sockets('198.51.100.7', 300))).toEqual(['198.51.100.7 syn-flood 300>20']);
    expect(judge(sockets('2001:db8:1::7', 300))).toEqual(['2001:db8:1::7 syn-flood 300>20']);
  });

  it('still bans a /24 of 60 sources with 4 half-open connections each', () => {
    expect(judge(spread('203.0.113.', 1, 60, 4))).toEqual(['203.0.113.0/24 syn-flood-subnet 240>100']);
  });

  it('bans the two heavy sources of a /24, and the /24 only when its 50 light sources alone cross the threshold', () => {
    const heavy = [...sockets('198.51.100.7', 150), ...sockets('198.51.100.8', 150)];
    // 50 × 2 = 100: not more than 100, although with the heavy two the /24 holds 400.
    expect(judge([...heavy, ...spread('198.51.100.', 100, 149, 2)])).toEqual([
      '198.51.100.7 syn-flood 150>20',
      '198.51.100.8 syn-flood 150>20',
    ]);
    // 50 × 3 = 150: the light sources flood by themselves; the heavy two keep their own bans.
    expect(judge([...heavy, ...spread('198.51.100.', 100, 149, 3)])).toEqual([
      '198.51.100.0/24 syn-flood-subnet 150>100',
      '198.51.100.7 syn-flood 150>20',
      '198.51.100.8 syn-flood 150>20',
    ]);
  });

  it('leaves out a source flagged by any per-ip rule, whatever it counts and wherever it stands in the policy', () => {
    // .77 floods HTTP (http-flood, listed after the subnet rule) and holds 15 half-open connections
    // too, under syn-flood's 20; with them its /24's ten light sources would be over 100.
    const rows = [
      ...sockets('198.51.100.77', 120, 'ESTABLISHED'),
      ...sockets('198.51.100.77', 15),
      ...spread('198.51.100.', 10, 19, 9),
    ];
    expect(judge(rows)).toEqual(['198.51.100.77 http-flood 120>100']);
    const netFirst = parsePolicy(
      `rules:
  - name: busy-subnet
    per: net
    threshold: 100
  - name: busy-source
    threshold: 100
`,
      'policy.yaml',
    );
    expect(
      judge([...sockets('198.51.100.77', 150, 'ESTABLISHED'), ...spread('198.51.100.', 10, 19, 9)], netFirst),
    ).toEqual(['198.51.100.77 busy-source 150>100']);
  });

  it('does not count a source banned already (suppressed) toward its network', () => {
    const rows = [...sockets('198.51.100.7', 300), ...spread('198.51.100.', 100, 109, 2)];
    expect(
      judge(rows, defaultPolicy, { allowlist: defaultAllowlist, suppressed: CidrSet.parse(['198.51.100.7']) }),
    ).toEqual([]);
  });

  it('does not count an allowlisted source that crosses a per-ip threshold toward its network either', () => {
    // Its network is never banned whole anyway (it holds an allowlisted address); its neighbours are
    // judged one by one, and none crosses a per-ip threshold here.
    const rows = [...sockets('198.51.100.7', 300), ...spread('198.51.100.', 100, 109, 2)];
    expect(judge(rows, defaultPolicy, { allowlist: buildAllowlist(['198.51.100.7'], []) })).toEqual([]);
  });

  it('needs min_sources distinct sources (3 by default) in the network', () => {
    const lowNet = policyWith({
      rules: defaultPolicy.rules.map((rule) => (rule.per === 'net' ? { ...rule, threshold: 30 } : rule)),
    });
    // Two sources at syn-flood's limit (20 is not more than 20): 40 half-open connections, two sources.
    expect(judge(spread('203.0.113.', 1, 2, 20), lowNet)).toEqual([]);
    expect(judge(spread('203.0.113.', 1, 3, 20), lowNet)).toEqual(['203.0.113.0/24 syn-flood-subnet 60>30']);
    const two = policyWith({
      rules: lowNet.rules.map((rule) => (rule.per === 'net' ? { ...rule, min_sources: 2 } : rule)),
    });
    expect(judge(spread('203.0.113.', 1, 2, 20), two)).toEqual(['203.0.113.0/24 syn-flood-subnet 40>30']);
    const many = policyWith({
      rules: lowNet.rules.map((rule) => (rule.per === 'net' ? { ...rule, min_sources: 10 } : rule)),
    });
    expect(judge(spread('2001:db8:1::', 1, 9, 5), many)).toEqual([]);
    expect(judge(spread('2001:db8:1::', 1, 10, 5), many)).toEqual(['2001:db8:1::/64 syn-flood-subnet 50>30']);
  });
});
