/**
 * Named traffic scenarios for the floodgate lab, the table capture used to
 * produce test/fixtures/tables/<scenario>/, and the "by design" expectation that
 * goes into expected.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { canonicalIp, parseSs, type Lab, type LabOptions } from './lab.js';

// ---------------------------------------------------------------------------
// address ranges

/** `${prefix}.${from}` .. `${prefix}.${to}` */
export function range4(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${prefix}.${i}`);
  return out;
}

/** `${prefix}${hex(from)}` .. `${prefix}${hex(to)}`, e.g. range6('2001:db8:1::', 1, 40) -> 2001:db8:1::1 .. 2001:db8:1::28 */
export function range6(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(canonicalIp(`${prefix}${i.toString(16)}`));
  return out;
}

// ---------------------------------------------------------------------------
// scenario model

export type Step =
  | { kind: 'syn'; label: string; sources: string[]; perSource: number; port: number }
  /** half-open flood that is not expected to create one SYN_RECV per SYN (syncookies) */
  | { kind: 'synSettle'; label: string; sources: string[]; perSource: number; port: number; expectSynRecv: number }
  | { kind: 'established'; label: string; sources: string[]; perSource: number; port: number }
  | { kind: 'clients'; label: string; sources: string[]; perSource: number; port: number }
  | { kind: 'timewait'; label: string; source: string; count: number; port: number }
  | { kind: 'listen'; label: string; host: string; port: number; backlog: number; ipv6Only?: boolean }
  /** capture one command's output into a file (only during `capture`) */
  | { kind: 'snapshot'; label: string; file: string; argv: string[] };

export interface Scenario {
  name: string;
  description: string;
  lab: LabOptions;
  steps: Step[];
  /** included in `capture` */
  capture: boolean;
  notes?: string[];
}

const NORMAL_CLIENTS: Step[] = [
  { kind: 'clients', label: 'normal IPv4 clients', sources: range4('198.51.100', 10, 14), perSource: 3, port: 443 },
  { kind: 'clients', label: 'normal IPv6 client', sources: ['2001:db8:3::10'], perSource: 2, port: 80 },
];

/** LISTEN sockets the lab always opens: tcp [::]:80 (dual-stack), 0.0.0.0:443, [::]:443 (v6only) */
export const DEFAULT_LISTEN_SOCKETS = 3;

export const SCENARIOS: Scenario[] = [
  {
    name: 'syn-flood',
    description: 'single-source IPv4 half-open SYN flood (200 from 198.51.100.66 to :80) plus normal clients',
    lab: { syncookies: false },
    capture: false,
    steps: [
      { kind: 'syn', label: 'single-source SYN flood', sources: ['198.51.100.66'], perSource: 200, port: 80 },
      ...NORMAL_CLIENTS,
    ],
  },
  {
    name: 'spread-flood',
    description:
      'spread IPv4 half-open flood: 100 sources 203.0.113.1..100, 5 SYN_RECV each, to :443, plus normal clients',
    lab: { syncookies: false },
    capture: false,
    steps: [
      { kind: 'syn', label: 'spread SYN flood', sources: range4('203.0.113', 1, 100), perSource: 5, port: 443 },
      ...NORMAL_CLIENTS,
    ],
  },
  {
    name: 'spread-flood6',
    description:
      'spread IPv6 half-open flood: 100 sources 2001:db8:1::1..::64, 5 SYN_RECV each, to :80, plus normal clients',
    lab: { syncookies: false },
    capture: false,
    steps: [
      { kind: 'syn', label: 'spread IPv6 SYN flood', sources: range6('2001:db8:1::', 1, 100), perSource: 5, port: 80 },
      ...NORMAL_CLIENTS,
    ],
  },
  {
    name: 'established-flood',
    description: 'established-connection flood: 120 ESTABLISHED from 198.51.100.77 to :443, plus normal clients',
    lab: { syncookies: false },
    capture: false,
    steps: [
      { kind: 'established', label: 'established flood', sources: ['198.51.100.77'], perSource: 120, port: 443 },
      ...NORMAL_CLIENTS,
    ],
  },
  {
    name: 'mixed',
    description:
      'syncookies off. Half-open: 30 from 198.51.100.66 to :80 (dual-stack listener, v4-mapped), 40 sources 203.0.113.1..40 x5 to :443, ' +
      '40 sources 2001:db8:1::1..::28 x3 to :80, 25 from 2001:db8:2::66 to :443. Established: 120 from 198.51.100.77 to :443, ' +
      'allowlisted heavy client 198.51.100.200 x60 to :80, normal clients 198.51.100.10..14 x3 to :443 and 2001:db8:3::10 x2 to :80. ' +
      'TIME_WAIT: 4 from 198.51.100.15 to :80, closed by the server first.',
    lab: { syncookies: false },
    capture: true,
    steps: [
      {
        kind: 'syn',
        label: 'single-source SYN flood (v4 -> dual-stack :80)',
        sources: ['198.51.100.66'],
        perSource: 30,
        port: 80,
      },
      { kind: 'syn', label: 'spread SYN flood', sources: range4('203.0.113', 1, 40), perSource: 5, port: 443 },
      { kind: 'syn', label: 'spread IPv6 SYN flood', sources: range6('2001:db8:1::', 1, 40), perSource: 3, port: 80 },
      { kind: 'syn', label: 'single-source IPv6 SYN flood', sources: ['2001:db8:2::66'], perSource: 25, port: 443 },
      { kind: 'established', label: 'established flood', sources: ['198.51.100.77'], perSource: 120, port: 443 },
      { kind: 'established', label: 'allowlisted heavy client', sources: ['198.51.100.200'], perSource: 60, port: 80 },
      ...NORMAL_CLIENTS,
      {
        kind: 'timewait',
        label: 'server-closed connections (server TIME_WAIT)',
        source: '198.51.100.15',
        count: 4,
        port: 80,
      },
    ],
  },
  {
    name: 'quiet',
    description:
      'calm server: only normal clients (198.51.100.10..14 x3 ESTABLISHED to :443, 2001:db8:3::10 x2 to :80); nothing should be flagged',
    lab: { syncookies: false },
    capture: true,
    steps: [...NORMAL_CLIENTS],
  },
  {
    name: 'cookies',
    description:
      'syncookies on (tcp_syncookies=1). Extra listener 0.0.0.0:8080 with backlog 64; 200 spoofed-style sources 203.0.113.1..200 send ONE SYN each ' +
      '(SYN-ACKs dropped at the attacker). The SYN queue of :8080 fills at 65 requests (backlog+1: this kernel only refuses when qlen > backlog), the rest are answered with syncookies and leave no socket, ' +
      'so each source holds at most 1 SYN_RECV. Plus normal clients. /proc/net/netstat saved before and after the flood.',
    lab: { syncookies: true },
    capture: true,
    steps: [
      { kind: 'listen', label: 'small-backlog listener', host: '0.0.0.0', port: 8080, backlog: 64 },
      ...NORMAL_CLIENTS,
      {
        kind: 'snapshot',
        label: 'counters before',
        file: 'netstat-counters-before.txt',
        argv: ['cat', '/proc/net/netstat'],
      },
      {
        kind: 'synSettle',
        label: 'one SYN per source (syncookies)',
        sources: range4('203.0.113', 1, 200),
        perSource: 1,
        port: 8080,
        expectSynRecv: 65,
      },
      {
        kind: 'snapshot',
        label: 'counters after',
        file: 'netstat-counters-after.txt',
        argv: ['cat', '/proc/net/netstat'],
      },
    ],
    notes: [
      'Which 65 of the 200 sources hold a SYN_RECV is decided by the kernel (normally the first 65 to arrive); synRecvByIp/byIpAllStatesButListen therefore list only the normal clients by design, and observedSynRecvByIp records what ss showed at capture time.',
      'Compare netstat-counters-before.txt/-after.txt: TcpExt SyncookiesSent and TCPReqQFullDoCookies grow by ~135 = 200 - 65 right after the flood; they keep growing later because the attacker retransmits its SYNs and each retransmit of a source without a SYN_RECV gets another cookie.',
    ],
  },
];

export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown scenario "${name}"; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
  return s;
}

// ---------------------------------------------------------------------------
// running

export interface RunHooks {
  /** called for 'snapshot' steps (only capture uses them) */
  snapshot?: (file: string, argv: string[]) => Promise<void>;
  log?: (msg: string) => void;
}

export async function runScenario(lab: Lab, sc: Scenario, hooks: RunHooks = {}): Promise<void> {
  const log = hooks.log ?? (() => {});
  for (const st of sc.steps) {
    const t0 = Date.now();
    switch (st.kind) {
      case 'syn':
        await lab.synFlood({ sources: st.sources, perSource: st.perSource, port: st.port });
        log(
          `${st.label}: ${st.sources.length} source(s) x ${st.perSource} SYN_RECV -> :${st.port} (${describeSources(st.sources)})`,
        );
        break;
      case 'synSettle':
        await lab.synFlood({ sources: st.sources, perSource: st.perSource, port: st.port, exact: false });
        log(
          `${st.label}: ${st.sources.length} source(s) x ${st.perSource} SYN -> :${st.port} (${describeSources(st.sources)})`,
        );
        break;
      case 'established':
        await lab.establishedFlood({ sources: st.sources, perSource: st.perSource, port: st.port });
        log(
          `${st.label}: ${st.sources.length} source(s) x ${st.perSource} ESTABLISHED -> :${st.port} (${describeSources(st.sources)})`,
        );
        break;
      case 'clients':
        await lab.normalClients({ sources: st.sources, perSource: st.perSource, port: st.port });
        log(
          `${st.label}: ${st.sources.length} source(s) x ${st.perSource} ESTABLISHED -> :${st.port} (${describeSources(st.sources)})`,
        );
        break;
      case 'timewait':
        await lab.timeWait({ source: st.source, count: st.count, port: st.port });
        log(`${st.label}: ${st.count} x ${st.source} -> :${st.port} now in TIME_WAIT on the server`);
        break;
      case 'listen':
        await lab.listen({ host: st.host, port: st.port, backlog: st.backlog, ipv6Only: st.ipv6Only });
        log(`${st.label}: listening on ${st.host}:${st.port} backlog ${st.backlog}`);
        break;
      case 'snapshot':
        if (hooks.snapshot) await hooks.snapshot(st.file, st.argv);
        break;
    }
    void t0;
  }
}

function describeSources(s: string[]): string {
  return s.length <= 2 ? s.join(', ') : `${s[0]} .. ${s[s.length - 1]}`;
}

// ---------------------------------------------------------------------------
// expectation by design

function netOf(ip: string): string {
  const c = canonicalIp(ip);
  if (net.isIPv4(c)) return `${c.split('.').slice(0, 3).join('.')}.0/24`;
  // /64 of a canonical address: expand the first 4 groups
  const [head = '', tail = ''] = c.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = c.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${canonicalIp(`${groups.slice(0, 4).join(':')}::`)}/64`;
}

const add = (o: Record<string, number>, k: string, n: number) => {
  o[k] = (o[k] ?? 0) + n;
};
const sortObj = (o: Record<string, number>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })));

export interface Expected {
  description: string;
  scenario: string;
  syncookies: boolean;
  states: Record<string, number>;
  synRecvByIp: Record<string, number>;
  establishedByIp: Record<string, number>;
  timeWaitByIp: Record<string, number>;
  byIpAllStatesButListen: Record<string, number>;
  synRecvByNet: Record<string, number>;
  establishedByNet: Record<string, number>;
  synRecvByLocalPort: Record<string, number>;
  /** rows per /proc file (TCP). Sockets of IPv4 peers on the dual-stack :80 listener are in tcp6 as ::ffff:a.b.c.d */
  procRows: { tcp: number; tcp6: number };
  udpSockets: { udp: number; udp6: number };
  notes: string;
  [k: string]: unknown;
}

export function expectedFor(sc: Scenario): Expected {
  const states: Record<string, number> = { LISTEN: DEFAULT_LISTEN_SOCKETS, SYN_RECV: 0, ESTABLISHED: 0, TIME_WAIT: 0 };
  const syn: Record<string, number> = {};
  const est: Record<string, number> = {};
  const tw: Record<string, number> = {};
  const all: Record<string, number> = {};
  const synNet: Record<string, number> = {};
  const estNet: Record<string, number> = {};
  const synPort: Record<string, number> = {};
  // listeners: tcp table gets 0.0.0.0:443, tcp6 gets [::]:80 and [::]:443
  const rows = { tcp: 1, tcp6: 2 };
  // which /proc table a socket to `port` from `ip` lands in
  const dualStack = new Set([80]);
  const table = (ip: string, port: number): 'tcp' | 'tcp6' => (net.isIPv6(ip) || dualStack.has(port) ? 'tcp6' : 'tcp');
  for (const st of sc.steps) {
    if (st.kind === 'listen') {
      states.LISTEN!++;
      rows[st.host.includes(':') ? 'tcp6' : 'tcp']++;
      if (st.host === '::' && !st.ipv6Only) dualStack.add(st.port);
    } else if (st.kind === 'syn' || st.kind === 'established' || st.kind === 'clients') {
      for (const s of st.sources) {
        const ip = canonicalIp(s);
        const n = st.perSource;
        if (st.kind === 'syn') {
          states.SYN_RECV! += n;
          add(syn, ip, n);
          add(synNet, netOf(ip), n);
          add(synPort, String(st.port), n);
        } else {
          states.ESTABLISHED! += n;
          add(est, ip, n);
          add(estNet, netOf(ip), n);
        }
        add(all, ip, n);
        rows[table(ip, st.port)] += n;
      }
    } else if (st.kind === 'synSettle') {
      states.SYN_RECV! += st.expectSynRecv;
      add(synNet, netOf(st.sources[0]!), st.expectSynRecv);
      add(synPort, String(st.port), st.expectSynRecv);
      rows[table(canonicalIp(st.sources[0]!), st.port)] += st.expectSynRecv;
    } else if (st.kind === 'timewait') {
      const ip = canonicalIp(st.source);
      states.TIME_WAIT! += st.count;
      add(tw, ip, st.count);
      add(all, ip, st.count);
      rows[table(ip, st.port)] += st.count;
    }
  }
  for (const k of Object.keys(states)) if (states[k] === 0) delete states[k];
  return {
    description: sc.description,
    scenario: sc.name,
    syncookies: !!sc.lab.syncookies,
    states,
    synRecvByIp: sortObj(syn),
    establishedByIp: sortObj(est),
    timeWaitByIp: sortObj(tw),
    byIpAllStatesButListen: sortObj(all),
    synRecvByNet: sortObj(synNet),
    establishedByNet: sortObj(estNet),
    synRecvByLocalPort: synPort,
    procRows: rows,
    // udp 0.0.0.0:53 + 192.0.2.1:x connected to 192.0.2.2:53; udp6 [::]:53 (v6only) + [2001:db8::1]:x connected to [2001:db8::2]:53
    udpSockets: { udp: 2, udp6: 2 },
    notes: (sc.notes ?? []).join(' '),
  };
}

// ---------------------------------------------------------------------------
// capture

/** file name -> argv run inside the server ns */
export const CAPTURE_COMMANDS: Record<string, string[]> = {
  'proc-tcp.txt': ['cat', '/proc/net/tcp'],
  'proc-tcp6.txt': ['cat', '/proc/net/tcp6'],
  'proc-udp.txt': ['cat', '/proc/net/udp'],
  'proc-udp6.txt': ['cat', '/proc/net/udp6'],
  'netstat-an.txt': ['netstat', '-an'],
  'netstat-ant.txt': ['netstat', '-ant'],
  'netstat-antu.txt': ['netstat', '-antu'],
  'netstat-antW.txt': ['netstat', '-antW'],
  'ss-tan.txt': ['ss', '-tan'],
  'ss-tanu.txt': ['ss', '-tanu'],
};

/** Run every capture command at once in the server ns and write the outputs to `dir`. Returns the spread in ms. */
export async function captureTables(lab: Lab, dir: string): Promise<{ spreadMs: number; files: string[] }> {
  await mkdir(dir, { recursive: true });
  const t0 = Date.now();
  const results = await Promise.all(
    Object.entries(CAPTURE_COMMANDS).map(async ([file, argv]) => {
      const r = await lab.execServer(argv);
      if (r.exitCode !== 0) throw new Error(`capture ${argv.join(' ')} failed: ${r.stderr}`);
      return [file, r.stdout] as const;
    }),
  );
  const spreadMs = Date.now() - t0;
  for (const [file, out] of results) await writeFile(path.join(dir, file), out);
  return { spreadMs, files: results.map(([f]) => f) };
}

/** Per-peer SYN_RECV counts seen in an `ss -tan` text (for the observed block of non-deterministic scenarios). */
export function observedSynRecvByIp(ssText: string): Record<string, number> {
  const o: Record<string, number> = {};
  for (const r of parseSs(ssText)) if (r.state === 'SYN-RECV') add(o, r.peerAddr, 1);
  return sortObj(o);
}
