/**
 * floodgate network lab: two throw-away network namespaces ("server" and
 * "attacker") joined by a veth pair, with a real TCP listener in the server ns
 * and a traffic agent in the attacker ns that produces exact numbers of
 * half-open (SYN_RECV) and ESTABLISHED connections from documentation-range
 * source addresses.
 *
 * Safety: nothing is ever created in, or configured on, the host namespace. The
 * veth pair is created directly inside the two namespaces; every iptables /
 * sysctl call runs under `ip netns exec <our ns>`; all addresses are
 * documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
 * 2001:db8::/32) and every source is checked against them.
 *
 * Requires root, iproute2 (ip, ss), iptables/ip6tables and Node >= 20.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export interface LabOptions {
  /** net.ipv4.tcp_syncookies in the server ns: false -> 0 (default), true -> 1. */
  syncookies?: boolean;
  /**
   * net.ipv4.tcp_synack_retries in the server ns. Default: kernel default (5),
   * i.e. an unanswered half-open socket lives ~63 s. Larger values keep a flood
   * visible for longer (the CLI uses 20, ~30 min).
   */
  synackRetries?: number;
  /** Start the default listeners (tcp [::]:80 dual-stack, 0.0.0.0:443, [::]:443 v6only + UDP). Default true. */
  defaultListeners?: boolean;
  /** Log each step to stderr. */
  verbose?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ExecOptions {
  input?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface FloodOptions {
  sources: string[];
  perSource: number;
  port: number;
  /** Max time to wait for the server to show the sockets (default 20000 ms). */
  timeoutMs?: number;
}

export interface SynFloodOptions extends FloodOptions {
  /**
   * true (default): resolve only when the server shows exactly `perSource` new
   * SYN_RECV per source. false: resolve once the server's SYN_RECV count for
   * these sources stops changing (for syncookie scenarios, where most SYNs are
   * answered statelessly and never become SYN_RECV sockets).
   */
  exact?: boolean;
}

export interface TimeWaitOptions {
  source: string;
  count: number;
  port: number;
  timeoutMs?: number;
}

export interface StopOptions {
  /**
   * Also remove the server-side SYN_RECV request sockets at once (`ss -K` in the
   * server ns). Default true. With false they linger until the server gives up
   * retransmitting SYN-ACKs (or the next retransmit gets a RST).
   */
  killServerHalfOpen?: boolean;
  /** Wait until the server shows no SYN_RECV / ESTABLISHED socket from any lab source. Default true. */
  wait?: boolean;
  timeoutMs?: number;
}

export interface SsRow {
  /** ss spelling: ESTAB, SYN-RECV, TIME-WAIT, LISTEN, ... */
  state: string;
  localAddr: string;
  localPort: number;
  peerAddr: string;
  peerPort: number | null;
}

export interface ListenOptions {
  port: number;
  host: string;
  ipv6Only?: boolean;
  backlog?: number;
}

export interface Lab {
  id: string;
  server: string;
  attacker: string;
  serverIf: string;
  attackerIf: string;
  serverAddr4: string;
  attackerAddr4: string;
  serverAddr6: string;
  attackerAddr6: string;
  execServer(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  execAttacker(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  spawnServer(argv: string[], opts?: { env?: Record<string, string> }): ChildProcess;
  synFlood(o: SynFloodOptions): Promise<void>;
  establishedFlood(o: FloodOptions): Promise<void>;
  normalClients(o: FloodOptions): Promise<void>;
  /** Open `count` connections from `source`, then let the SERVER close first, so they sit in TIME_WAIT on the server (~60 s). */
  timeWait(o: TimeWaitOptions): Promise<void>;
  /** Add another listener in the server ns (e.g. a small-backlog port for syncookie tests). */
  listen(o: ListenOptions): Promise<void>;
  stopTraffic(opts?: StopOptions): Promise<void>;
  /** Per remote IP counts (v4-mapped shown as plain IPv4). state: ss or netstat spelling; omitted -> all states except LISTEN. */
  countServer(state?: string): Promise<Map<string, number>>;
  /** Parsed `ss -Htan` of the server ns. */
  serverSockets(): Promise<SsRow[]>;
  /** Every source address currently configured in the attacker ns. */
  sources(): string[];
  destroy(): Promise<void>;
}

// ---------------------------------------------------------------------------
// constants & address helpers

export const NS_PREFIX = 'fgl';
const NS_RE = /^fgl-(\d+)-([0-9a-f]{6})-(srv|atk)$/;
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const LISTENER_SCRIPT = here('./listener.mjs');
const AGENT_SCRIPT = here('./agent.mjs');

export const SERVER_ADDR4 = '192.0.2.1';
export const ATTACKER_ADDR4 = '192.0.2.2';
export const SERVER_ADDR6 = '2001:db8::1';
export const ATTACKER_ADDR6 = '2001:db8::2';
/** Prefixes routed from the server to the attacker (attacker sources must be inside). */
export const SOURCE_NETS = ['198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] as const;

const allowedSources = new net.BlockList();
allowedSources.addSubnet('198.51.100.0', 24, 'ipv4');
allowedSources.addSubnet('203.0.113.0', 24, 'ipv4');
allowedSources.addSubnet('2001:db8::', 32, 'ipv6');
const reservedLink = new Set([SERVER_ADDR6, ATTACKER_ADDR6, SERVER_ADDR4, ATTACKER_ADDR4]);

/** Canonical (RFC 5952 compressed, lower-case) form of an IP; IPv4-mapped IPv6 -> plain IPv4. */
export function canonicalIp(addr: string): string {
  let a = addr.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const pct = a.indexOf('%');
  if (pct >= 0) a = a.slice(0, pct);
  const fam = net.isIP(a);
  if (fam === 4) return a;
  if (fam !== 6) throw new Error(`not an IP address: ${addr}`);
  const host = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (m) {
    const hi = parseInt(m[1]!, 16);
    const lo = parseInt(m[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  if (host.startsWith('::ffff:') && net.isIPv4(host.slice(7))) return host.slice(7);
  return host;
}

function checkSource(src: string): 4 | 6 {
  const fam = net.isIP(src);
  if (fam !== 4 && fam !== 6) throw new Error(`lab: source ${src} is not an IP address`);
  if (!allowedSources.check(src, fam === 4 ? 'ipv4' : 'ipv6'))
    throw new Error(`lab: source ${src} is outside the documentation ranges ${SOURCE_NETS.join(', ')}`);
  if (reservedLink.has(canonicalIp(src))) throw new Error(`lab: source ${src} is a link address`);
  return fam;
}

/** Map ss/netstat state spellings to ss's. */
export function ssState(state: string): string {
  const s = state.trim().toUpperCase().replace(/_/g, '-');
  const map: Record<string, string> = { ESTABLISHED: 'ESTAB', 'SYN-RECEIVED': 'SYN-RECV', 'CLOSE-WAIT': 'CLOSE-WAIT' };
  return map[s] ?? s;
}

function splitHostPort(s: string): [string, string] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), s.slice(i + 1)];
}

/** Parse `ss -Htan` (or `ss -tan`, header is skipped) output. */
export function parseSs(out: string): SsRow[] {
  const rows: SsRow[] = [];
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || f[0] === 'State' || f[0] === 'Netid') continue;
    // with -u there is a Netid column first
    const off = f[0] === 'tcp' || f[0] === 'udp' ? 1 : 0;
    const [state, , , local, peer] = f.slice(off);
    if (!state || !local || !peer) continue;
    const [la, lp] = splitHostPort(local);
    const [pa, pp] = splitHostPort(peer);
    rows.push({
      state,
      localAddr: la === '*' ? '*' : canonicalIp(la),
      localPort: Number(lp),
      peerAddr: pa === '*' ? '*' : canonicalIp(pa),
      peerPort: pp === '*' ? null : Number(pp),
    });
  }
  return rows;
}

function countBy(rows: SsRow[], pred: (r: SsRow) => boolean): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) if (pred(r)) m.set(r.peerAddr, (m.get(r.peerAddr) ?? 0) + 1);
  return m;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// JSON-lines RPC with listener.mjs / agent.mjs

class Rpc {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readyWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private stderrTail = '';
  exited = false;
  readonly ready: Promise<void>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.ready = new Promise<void>((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    this.ready.catch(() => {});
    child.stderr?.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-4000);
    });
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let msg: { id: number | null; ok: boolean; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.id === 0) {
        this.readyWaiter?.resolve();
        return;
      }
      const p = msg.id === null ? undefined : this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id!);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${this.name}: ${msg.error}`));
    });
    const onGone = (why: string) => {
      if (this.exited) return;
      this.exited = true;
      const err = new Error(`${this.name} ${why}${this.stderrTail ? `; stderr: ${this.stderrTail.trim()}` : ''}`);
      this.readyWaiter?.reject(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    child.on('exit', (code, sig) => onGone(`exited (code ${code}, signal ${sig})`));
    child.on('error', (e) => onGone(`failed: ${e.message}`));
    child.stdin?.on('error', () => {});
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }
}

// ---------------------------------------------------------------------------
// process-wide registry and exit handling

const liveLabs = new Set<LabImpl>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = () => {
      const labs = [...liveLabs];
      void Promise.allSettled(labs.map((l) => l.destroy())).finally(() => {
        // if nobody else handles the signal, behave like the default action
        process.removeListener(sig, handler);
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      });
    };
    process.on(sig, handler);
  }
}

function nsPids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 1 && n !== process.pid);
  } catch {
    return [];
  }
}

function listNamespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter(Boolean);
  } catch {
    return [];
  }
}

/** Kill every process inside `ns` (they can only be ours: the ns is ours) and delete it. Synchronous. */
function removeNamespaceSync(ns: string): void {
  for (let round = 0; round < 20; round++) {
    const pids = nsPids(ns);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    execFileSync('sleep', ['0.05']);
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove namespaces left behind by earlier labs whose owning process is dead. */
export async function cleanupStaleLabs(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = NS_RE.exec(ns);
    if (!m) continue;
    const owner = Number(m[1]);
    if (owner === process.pid || pidAlive(owner)) continue;
    removeNamespaceSync(ns);
    removed.push(ns);
  }
  return removed;
}

/** Namespaces of labs (alive or not) currently present. */
export function listLabNamespaces(): string[] {
  return listNamespaces().filter((n) => NS_RE.test(n));
}

// ---------------------------------------------------------------------------

async function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  const r = await execa(cmd!, args, {
    reject: false,
    input: opts.input,
    timeout: opts.timeoutMs ?? 30000,
    env: opts.env,
    stripFinalNewline: false,
  });
  return {
    stdout: typeof r.stdout === 'string' ? r.stdout : String(r.stdout ?? ''),
    stderr: typeof r.stderr === 'string' ? r.stderr : String(r.stderr ?? ''),
    exitCode: r.exitCode ?? (r.timedOut ? 124 : -1),
  };
}

async function must(what: string, p: Promise<ExecResult>): Promise<ExecResult> {
  const r = await p;
  if (r.exitCode !== 0)
    throw new Error(`lab: ${what} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

class LabImpl implements Lab {
  readonly id: string;
  readonly server: string;
  readonly attacker: string;
  readonly serverIf: string;
  readonly attackerIf: string;
  readonly serverAddr4 = SERVER_ADDR4;
  readonly attackerAddr4 = ATTACKER_ADDR4;
  readonly serverAddr6 = SERVER_ADDR6;
  readonly attackerAddr6 = ATTACKER_ADDR6;

  private listener: Rpc | null = null;
  private agent: Rpc | null = null;
  private children = new Set<ChildProcess>();
  private addedSources = new Set<string>();
  private dropRules = new Set<string>();
  private destroyed = false;
  private destroying: Promise<void> | null = null;

  constructor(private readonly opts: LabOptions) {
    const rand = randomBytes(3).toString('hex');
    this.id = `${process.pid}-${rand}`;
    this.server = `${NS_PREFIX}-${this.id}-srv`;
    this.attacker = `${NS_PREFIX}-${this.id}-atk`;
    this.serverIf = `fgs${rand}`; // 9 chars
    this.attackerIf = `fga${rand}`;
  }

  private log(msg: string): void {
    if (this.opts.verbose) process.stderr.write(`[lab ${this.id}] ${msg}\n`);
  }

  execServer(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', this.server, ...argv], opts);
  }

  execAttacker(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', this.attacker, ...argv], opts);
  }

  spawnServer(argv: string[], opts: { env?: Record<string, string> } = {}): ChildProcess {
    if (this.destroyed) throw new Error('lab: destroyed');
    const child = spawn('ip', ['netns', 'exec', this.server, ...argv], {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  private spawnNode(ns: string, script: string, name: string): Rpc {
    // raise the fd limit (root may raise the hard limit) then exec node
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'sh',
        '-c',
        'ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null; exec "$0" "$@"',
        process.execPath,
        script,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return new Rpc(name, child);
  }

  async setup(): Promise<void> {
    const t0 = Date.now();
    const { server: S, attacker: A, serverIf: SI, attackerIf: AI } = this;
    await must('netns add', run(['ip', 'netns', 'add', S]));
    await must('netns add', run(['ip', 'netns', 'add', A]));
    // veth created directly inside the two namespaces: never visible in the host ns
    await must('veth', run(['ip', 'link', 'add', SI, 'netns', S, 'type', 'veth', 'peer', 'name', AI, 'netns', A]));

    const srvSysctl = [
      `net.ipv4.tcp_syncookies=${this.opts.syncookies ? 1 : 0}`,
      'net.ipv4.tcp_max_syn_backlog=65536',
      'net.core.somaxconn=65535',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
      `net.ipv6.conf.${SI}.accept_dad=0`,
      `net.ipv6.conf.${SI}.accept_ra=0`,
    ];
    if (this.opts.synackRetries !== undefined) srvSysctl.push(`net.ipv4.tcp_synack_retries=${this.opts.synackRetries}`);
    const atkSysctl = [
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
      `net.ipv6.conf.${AI}.accept_dad=0`,
      `net.ipv6.conf.${AI}.accept_ra=0`,
      'net.ipv4.ip_local_port_range=10000 65000',
    ];
    await Promise.all([
      must('server sysctl', this.execServer(['sysctl', '-q', '-w', ...srvSysctl])),
      must('attacker sysctl', this.execAttacker(['sysctl', '-q', '-w', ...atkSysctl])),
    ]);

    const srvIp = [
      'link set lo up',
      `addr add ${SERVER_ADDR4}/24 dev ${SI}`,
      `addr add ${SERVER_ADDR6}/64 dev ${SI} nodad`,
      `link set ${SI} up`,
    ].join('\n');
    const atkIp = [
      'link set lo up',
      `addr add ${ATTACKER_ADDR4}/24 dev ${AI}`,
      `addr add ${ATTACKER_ADDR6}/64 dev ${AI} nodad`,
      `link set ${AI} up`,
    ].join('\n');
    await Promise.all([
      must('server ip', this.execServer(['ip', '-batch', '-'], { input: `${srvIp}\n` })),
      must('attacker ip', this.execAttacker(['ip', '-batch', '-'], { input: `${atkIp}\n` })),
    ]);
    const routes = [
      `route add 198.51.100.0/24 via ${ATTACKER_ADDR4} dev ${SI}`,
      `route add 203.0.113.0/24 via ${ATTACKER_ADDR4} dev ${SI}`,
      `route add 2001:db8::/32 via ${ATTACKER_ADDR6} dev ${SI}`,
    ].join('\n');
    await must('server routes', this.execServer(['ip', '-batch', '-'], { input: `${routes}\n` }));

    // attacker: a private chain for the SYN-ACK drop rules
    const chain = '*filter\n:FGLAB - [0:0]\n-I INPUT -j FGLAB\nCOMMIT\n';
    await Promise.all([
      must('iptables chain', this.execAttacker(['iptables-restore', '-w', '--noflush'], { input: chain })),
      must('ip6tables chain', this.execAttacker(['ip6tables-restore', '-w', '--noflush'], { input: chain })),
    ]);

    this.listener = this.spawnNode(S, LISTENER_SCRIPT, 'listener');
    this.agent = this.spawnNode(A, AGENT_SCRIPT, 'agent');
    await Promise.all([this.listener.ready, this.agent.ready]);
    if (this.opts.defaultListeners !== false) {
      await this.listen({ port: 80, host: '::', ipv6Only: false });
      await this.listen({ port: 443, host: '0.0.0.0' });
      await this.listen({ port: 443, host: '::', ipv6Only: true });
      await this.listener.call('udp', { type: 'udp4', bindAddr: '0.0.0.0', port: 53 });
      await this.listener.call('udp', { type: 'udp6', bindAddr: '::', port: 53 });
      await this.listener.call('udp', {
        type: 'udp4',
        bindAddr: SERVER_ADDR4,
        port: 0,
        connectAddr: ATTACKER_ADDR4,
        connectPort: 53,
      });
      await this.listener.call('udp', {
        type: 'udp6',
        bindAddr: SERVER_ADDR6,
        port: 0,
        connectAddr: ATTACKER_ADDR6,
        connectPort: 53,
      });
    }
    this.log(`up in ${Date.now() - t0} ms: ${S} <-> ${A}`);
  }

  async listen(o: ListenOptions): Promise<void> {
    await this.listener!.call('listen', {
      port: o.port,
      host: o.host,
      ipv6Only: o.ipv6Only ?? false,
      backlog: o.backlog ?? 65535,
    });
  }

  sources(): string[] {
    return [...this.addedSources];
  }

  private async addSources(sources: string[]): Promise<void> {
    const lines: string[] = [];
    for (const s of sources) {
      const fam = checkSource(s);
      const c = canonicalIp(s);
      if (this.addedSources.has(c)) continue;
      lines.push(
        fam === 4 ? `addr add ${c}/32 dev ${this.attackerIf}` : `addr add ${c}/128 dev ${this.attackerIf} nodad`,
      );
      this.addedSources.add(c);
    }
    if (lines.length)
      await must('add sources', this.execAttacker(['ip', '-batch', '-'], { input: `${lines.join('\n')}\n` }));
  }

  private async addDropRules(sources: string[], port: number): Promise<void> {
    const v4: string[] = [];
    const v6: string[] = [];
    for (const s of sources) {
      const c = canonicalIp(s);
      const key = `${c}|${port}`;
      if (this.dropRules.has(key)) continue;
      this.dropRules.add(key);
      if (net.isIPv4(c))
        v4.push(`-A FGLAB -s ${SERVER_ADDR4} -d ${c}/32 -p tcp --sport ${port} --tcp-flags SYN,ACK SYN,ACK -j DROP`);
      else
        v6.push(`-A FGLAB -s ${SERVER_ADDR6} -d ${c}/128 -p tcp --sport ${port} --tcp-flags SYN,ACK SYN,ACK -j DROP`);
    }
    const jobs: Promise<ExecResult>[] = [];
    if (v4.length)
      jobs.push(
        must(
          'iptables drop SYN-ACK',
          this.execAttacker(['iptables-restore', '-w', '--noflush'], { input: `*filter\n${v4.join('\n')}\nCOMMIT\n` }),
        ),
      );
    if (v6.length)
      jobs.push(
        must(
          'ip6tables drop SYN-ACK',
          this.execAttacker(['ip6tables-restore', '-w', '--noflush'], { input: `*filter\n${v6.join('\n')}\nCOMMIT\n` }),
        ),
      );
    await Promise.all(jobs);
  }

  async serverSockets(): Promise<SsRow[]> {
    const r = await must('ss', this.execServer(['ss', '-Htan']));
    return parseSs(r.stdout);
  }

  async countServer(state?: string): Promise<Map<string, number>> {
    const rows = await this.serverSockets();
    const want = state ? ssState(state) : null;
    return countBy(rows, (r) => (want ? r.state === want : r.state !== 'LISTEN'));
  }

  /** count per source of sockets in `state` on local `port` */
  private async countFor(state: string, port: number, sources: string[]): Promise<Map<string, number>> {
    const rows = await this.serverSockets();
    const m = countBy(rows, (r) => r.state === state && r.localPort === port);
    return new Map(sources.map((s) => [s, m.get(s) ?? 0]));
  }

  private async waitCounts(
    what: string,
    state: string,
    port: number,
    want: Map<string, number>,
    timeoutMs: number,
  ): Promise<void> {
    const sources = [...want.keys()];
    const deadline = Date.now() + timeoutMs;
    let seen = new Map<string, number>();
    for (;;) {
      seen = await this.countFor(state, port, sources);
      if (sources.every((s) => seen.get(s) === want.get(s))) return;
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    const diff = sources
      .filter((s) => seen.get(s) !== want.get(s))
      .slice(0, 10)
      .map((s) => `${s}: saw ${seen.get(s)}, want ${want.get(s)}`);
    const total = [...seen.values()].reduce((a, b) => a + b, 0);
    const wantTotal = [...want.values()].reduce((a, b) => a + b, 0);
    throw new Error(
      `lab: ${what}: server shows ${total}/${wantTotal} ${state} on port ${port} after ${timeoutMs} ms; ${diff.join('; ')}`,
    );
  }

  private target(sources: string[]): string {
    // pick the server address of the source's family
    return net.isIPv4(sources[0]!) ? SERVER_ADDR4 : SERVER_ADDR6;
  }

  /** Split sources by family: each family connects to the server address of that family. */
  private byFamily(sources: string[]): string[][] {
    const c = sources.map(canonicalIp);
    return [c.filter((s) => net.isIPv4(s)), c.filter((s) => net.isIPv6(s))].filter((g) => g.length > 0);
  }

  async synFlood(o: SynFloodOptions): Promise<void> {
    const t0 = Date.now();
    const sources = o.sources.map(canonicalIp);
    if (new Set(sources).size !== sources.length) throw new Error('lab: duplicate sources');
    await this.addSources(sources);
    const base = await this.countFor('SYN-RECV', o.port, sources);
    await this.addDropRules(sources, o.port);
    for (const g of this.byFamily(sources))
      await this.agent!.call('connect', {
        host: this.target(g),
        port: o.port,
        sources: g,
        perSource: o.perSource,
        group: 'flood',
        wait: 'issued',
      });
    const timeoutMs = o.timeoutMs ?? 20000;
    if (o.exact === false) {
      // wait until the count stops changing for 500 ms
      let last = -1;
      let stableSince = Date.now();
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = await this.countFor('SYN-RECV', o.port, sources);
        const n = [...m.values()].reduce((a, b) => a + b, 0);
        if (n !== last) {
          last = n;
          stableSince = Date.now();
        } else if (Date.now() - stableSince > 500) break;
        await sleep(50);
      }
    } else {
      const want = new Map(sources.map((s) => [s, (base.get(s) ?? 0) + o.perSource]));
      await this.waitCounts('synFlood', 'SYN-RECV', o.port, want, timeoutMs);
    }
    this.log(`synFlood ${sources.length}x${o.perSource} -> :${o.port} in ${Date.now() - t0} ms`);
  }

  private async established(o: FloodOptions, group: string): Promise<void> {
    const t0 = Date.now();
    const sources = o.sources.map(canonicalIp);
    if (new Set(sources).size !== sources.length) throw new Error('lab: duplicate sources');
    await this.addSources(sources);
    const base = await this.countFor('ESTAB', o.port, sources);
    const timeoutMs = o.timeoutMs ?? 20000;
    for (const g of this.byFamily(sources))
      await this.agent!.call('connect', {
        host: this.target(g),
        port: o.port,
        sources: g,
        perSource: o.perSource,
        group,
        wait: 'connect',
        timeoutMs,
      });
    const want = new Map(sources.map((s) => [s, (base.get(s) ?? 0) + o.perSource]));
    await this.waitCounts(group, 'ESTAB', o.port, want, timeoutMs);
    this.log(`${group} ${sources.length}x${o.perSource} -> :${o.port} in ${Date.now() - t0} ms`);
  }

  establishedFlood(o: FloodOptions): Promise<void> {
    return this.established(o, 'established');
  }

  normalClients(o: FloodOptions): Promise<void> {
    return this.established(o, 'clients');
  }

  async timeWait(o: TimeWaitOptions): Promise<void> {
    const src = canonicalIp(o.source);
    const base = await this.countFor('TIME-WAIT', o.port, [src]);
    await this.established({ sources: [src], perSource: o.count, port: o.port, timeoutMs: o.timeoutMs }, 'tw');
    const closed = await this.listener!.call<number>('closeFrom', { addr: src, port: o.port });
    if (closed < o.count) throw new Error(`lab: timeWait: listener closed only ${closed} connections from ${src}`);
    await this.waitCounts(
      'timeWait',
      'TIME-WAIT',
      o.port,
      new Map([[src, (base.get(src) ?? 0) + o.count]]),
      o.timeoutMs ?? 20000,
    );
  }

  async stopTraffic(opts: StopOptions = {}): Promise<void> {
    if (this.agent && !this.agent.exited) await this.agent.call('close', {});
    if (opts.killServerHalfOpen !== false) await this.execServer(['ss', '-K', '-t', 'state', 'syn-recv']);
    const flush = '*filter\n-F FGLAB\nCOMMIT\n';
    await Promise.all([
      must('iptables flush', this.execAttacker(['iptables-restore', '-w', '--noflush'], { input: flush })),
      must('ip6tables flush', this.execAttacker(['ip6tables-restore', '-w', '--noflush'], { input: flush })),
    ]);
    this.dropRules.clear();
    if (opts.wait === false) return;
    const deadline = Date.now() + (opts.timeoutMs ?? 20000);
    const srcs = this.addedSources;
    for (;;) {
      const rows = await this.serverSockets();
      const left = rows.filter(
        (r) =>
          srcs.has(r.peerAddr) &&
          (r.state === 'ESTAB' || (opts.killServerHalfOpen !== false && r.state === 'SYN-RECV')),
      );
      if (left.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(`lab: stopTraffic: server still has ${left.length} sockets from lab sources`);
      await sleep(50);
    }
  }

  async destroy(): Promise<void> {
    if (this.destroying) return this.destroying;
    this.destroying = (async () => {
      this.destroyed = true;
      for (const c of this.children) c.kill('SIGKILL');
      // give the kills a moment, then sweep anything else still inside our namespaces
      const deadline = Date.now() + 3000;
      while (this.children.size > 0 && Date.now() < deadline) await sleep(20);
      this.destroySync();
    })();
    return this.destroying;
  }

  /** Synchronous teardown (also used from process 'exit'). Idempotent. */
  destroySync(): void {
    this.destroyed = true;
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* ignore */
      }
    }
    removeNamespaceSync(this.server);
    removeNamespaceSync(this.attacker);
    liveLabs.delete(this);
  }
}

export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  if (process.getuid?.() !== 0) throw new Error('lab: must run as root (network namespaces)');
  installExitHandlers();
  await cleanupStaleLabs();
  const lab = new LabImpl(opts);
  liveLabs.add(lab);
  try {
    await lab.setup();
  } catch (e) {
    await lab.destroy();
    throw e;
  }
  return lab;
}
