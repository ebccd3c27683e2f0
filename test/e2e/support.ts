// Shared machinery of the real-kernel end-to-end suite: one attack lab per file, floodgate started in
// the lab's server namespace the way a user starts it, polling with failure messages that say what
// was seen, and readers for the server namespace's firewall.
//
// Safety: every floodgate and iptables command runs under `ip netns exec <lab server ns>`
// (lab.execServer / lab.spawnServer); nothing here touches the host's own firewall or network.
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect, onTestFailed } from 'vitest';
import { parse, stringify } from 'yaml';
import { type ExecOptions, type ExecResult, type Lab, type LabOptions, createLab } from '../../scripts/lab/lab.js';
import type { ListedBan } from '../../src/daemon/protocol.js';

export type { ExecResult, Lab, ListedBan };

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** The built CLI, exactly what `bin: floodgate` points at. */
export const CLI = join(REPO, 'dist', 'src', 'cli', 'main.cjs');
export const INTERVAL_MS = 1000;
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// can this suite run here?

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function unavailableReason(): string | null {
  if (process.platform !== 'linux') return `this is ${process.platform}, not Linux`;
  if (process.getuid?.() !== 0) return 'not running as root (network namespaces and iptables need root)';
  const missing = ['ip', 'ss', 'iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore'].filter(
    (tool) => !onPath(tool),
  );
  if (missing.length > 0) return `missing on PATH: ${missing.join(', ')} (install iproute2 and iptables)`;
  return null;
}

/** Why the suite cannot run here, or null. Checked once when a test file loads. */
export const SKIP_REASON = unavailableReason();
if (SKIP_REASON !== null) {
  console.warn(
    `\n*** floodgate e2e suite SKIPPED: ${SKIP_REASON} ***\n*** these real-kernel tests did NOT run; run them as root with iproute2 and iptables installed ***\n`,
  );
}

// ---------------------------------------------------------------------------
// polling

export interface WaitOptions {
  readonly timeoutMs: number;
  /** @default 100 */
  readonly intervalMs?: number;
  /** Extra context for the failure message (the firewall, the daemon's log, …). */
  readonly explain?: () => string | Promise<string>;
}

/**
 * Polls `probe` until it returns something other than undefined, null or false, and returns that.
 * On timeout the error says what was awaited, what the probe last saw (its last error, or the last
 * value `describe`d) and whatever `explain` adds.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  options: WaitOptions,
): Promise<T> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await sleep(options.intervalMs ?? 100);
  }
  const extra = options.explain
    ? `\n${await Promise.resolve(options.explain()).catch((e: Error) => `(explain failed: ${e.message})`)}`
    : '';
  const last =
    lastError === undefined ? '' : `\nlast probe error: ${(lastError as Error).message ?? String(lastError)}`;
  throw new Error(`timed out after ${Date.now() - started} ms waiting for ${what}${last}${extra}`);
}

// ---------------------------------------------------------------------------
// temp files and policies

const tempDirs = new Set<string>();

/** A fresh directory for one test (state dir, policies, lists); removed after the test. */
export function tempDir(label = 'test'): string {
  const dir = mkdtempSync(join(tmpdir(), `floodgate-e2e-${label}-`));
  tempDirs.add(dir);
  return dir;
}

/** policies/default.yaml as a plain object, for a test to adjust. */
export type PolicyObject = Record<string, unknown> & {
  rules: Array<Record<string, unknown> & { name: string }>;
  ban: Record<string, unknown>;
  allowlist: unknown[];
};

export function defaultPolicy(): PolicyObject {
  return parse(readFileSync(join(REPO, 'policies', 'default.yaml'), 'utf8')) as PolicyObject;
}

/** The default rule called `name` (throws when the default policy has none by that name). */
export function rule(policy: PolicyObject, name: string): Record<string, unknown> {
  const found = policy.rules.find((r) => r.name === name);
  if (!found)
    throw new Error(`the default policy has no rule ${name}; has ${policy.rules.map((r) => r.name).join(', ')}`);
  return found;
}

/**
 * Writes a copy of policies/default.yaml adjusted by `adjust` into `dir` and returns its path. The
 * interval is 1s unless `adjust` says otherwise (the daemon gets --interval 1s anyway).
 */
export function writePolicy(
  dir: string,
  adjust: (policy: PolicyObject) => void = () => {},
  name = 'policy.yaml',
): string {
  const policy = defaultPolicy();
  policy.interval = '1s';
  adjust(policy);
  const file = join(dir, name);
  writeFileSync(file, stringify(policy));
  return file;
}

export function writeText(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

// ---------------------------------------------------------------------------
// the lab, one per test file

export interface LabHandle {
  /** The lab; set once beforeAll has run. */
  readonly lab: Lab;
}

/**
 * Registers the hooks of one shared lab per file: created before the first test; after each test
 * the daemons are stopped, traffic is stopped and the server namespace's INPUT chains are flushed;
 * destroyed after the last test (also when a test failed).
 */
export function useLab(options: LabOptions = {}): LabHandle {
  let current: Lab | undefined;
  const handle = {
    get lab(): Lab {
      if (current === undefined) throw new Error('the lab is not up (beforeAll failed?)');
      return current;
    },
  };
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build floodgate first (npx tsc -p .)`);
    current = await createLab(options);
  });
  afterEach(async () => {
    await stopAllDaemons();
    try {
      if (current !== undefined) {
        await current.stopTraffic();
        await flushInput(current);
      }
    } finally {
      for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
      tempDirs.clear();
    }
  });
  afterAll(async () => {
    await stopAllDaemons();
    await current?.destroy();
    current = undefined;
  });
  return handle;
}

// ---------------------------------------------------------------------------
// the server namespace's firewall

export type Family = 4 | 6;
const iptables = (family: Family) => (family === 4 ? 'iptables' : 'ip6tables');

async function must(what: string, result: Promise<ExecResult>): Promise<ExecResult> {
  const r = await result;
  if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** `iptables -S INPUT` (or ip6tables) in the server namespace, one rule per entry, as printed. */
export async function instanceRules(lab: Lab, family: Family = 4): Promise<string[]> {
  const r = await must(`${iptables(family)} -S INPUT`, lab.execServer([iptables(family), '-w', '-S', 'INPUT']));
  return r.stdout.split('\n').filter((line) => line.trim() !== '');
}

/** The comment of a floodgate instance's rule: `floodgate`, or `floodgate-<id>` for a state directory other than /var/lib/floodgate. */
const INSTANCE_COMMENT = / --comment floodgate-[0-9a-f]{8}( |$)/;

/**
 * `iptables -S INPUT` (or ip6tables) in the server namespace, one rule per entry, with a state
 * directory's own tag `floodgate-<id>` shown as `floodgate`: a test with one floodgate cares which
 * rules it made, not its id. Tests of several instances read instanceRules().
 */
export async function inputRules(lab: Lab, family: Family = 4): Promise<string[]> {
  return (await instanceRules(lab, family)).map((line) => line.replace(INSTANCE_COMMENT, ' --comment floodgate$1'));
}

/** The tag of the rules floodgate writes for `stateDir` (its instance id, made at its first enforce or dry-run command). */
export function instanceTag(stateDir: string): string {
  return `floodgate-${readFileSync(join(stateDir, 'instance-id'), 'utf8').trim()}`;
}

/** Both families' INPUT chains as one text, for comparisons and failure messages. */
export async function firewallText(lab: Lab): Promise<string> {
  const [v4, v6] = await Promise.all([inputRules(lab, 4), inputRules(lab, 6)]);
  return `iptables -S INPUT:\n  ${v4.join('\n  ')}\nip6tables -S INPUT:\n  ${v6.join('\n  ')}`;
}

/** The exact rule floodgate writes for a target, as `iptables -S` prints it (as inputRules() shows it, unless `tag` is given). */
export function floodgateRule(cidr: string, tag = 'floodgate'): string {
  return `-A INPUT -s ${cidr} -m comment --comment ${tag} -j DROP`;
}

/** Sources of the floodgate-tagged rules of both families, once per rule (a duplicate shows twice). */
export async function bannedSources(lab: Lab): Promise<string[]> {
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    for (const line of await inputRules(lab, family)) {
      if (!line.includes('--comment floodgate')) continue;
      const tokens = line.split(' ');
      out.push(tokens[tokens.indexOf('-s') + 1] ?? '?');
    }
  }
  return out.sort();
}

/** How many times each given rule appears in `iptables -S` / `ip6tables -S`. */
export async function ruleCopies(lab: Lab, cidrs: readonly string[]): Promise<Record<string, number>> {
  const all = [...(await inputRules(lab, 4)), ...(await inputRules(lab, 6))];
  return Object.fromEntries(cidrs.map((cidr) => [cidr, all.filter((line) => line === floodgateRule(cidr)).length]));
}

export interface RuleCounter {
  readonly packets: number;
  readonly bytes: number;
}

/**
 * Packet and byte counters of floodgate's rules from `iptables -L INPUT -v -n -x`, keyed by source
 * as that listing prints it (198.51.100.66, 203.0.113.0/24, 2001:db8:1::/64).
 */
export async function dropCounters(lab: Lab, family: Family = 4): Promise<Map<string, RuleCounter>> {
  const r = await must(
    `${iptables(family)} -L INPUT`,
    lab.execServer([iptables(family), '-w', '-L', 'INPUT', '-v', '-n', '-x']),
  );
  const out = new Map<string, RuleCounter>();
  for (const line of r.stdout.split('\n')) {
    if (!/\/\* floodgate(-[0-9a-f]{8})? \*\//.test(line)) continue;
    // pkts bytes target prot opt in out source destination /* floodgate-<id> */
    const [packets, bytes, , , , , , source] = line.trim().split(/\s+/);
    out.set(source!, { packets: Number(packets), bytes: Number(bytes) });
  }
  return out;
}

export async function flushInput(lab: Lab): Promise<void> {
  await must('iptables -F INPUT', lab.execServer(['iptables', '-w', '-F', 'INPUT']));
  await must('ip6tables -F INPUT', lab.execServer(['ip6tables', '-w', '-F', 'INPUT']));
}

// ---------------------------------------------------------------------------
// floodgate commands in the server namespace

/** Runs `floodgate ARGS…` in the server namespace (node + the built CLI), never on the host. */
export function floodgate(lab: Lab, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  return lab.execServer([process.execPath, CLI, ...args], { timeoutMs: 30_000, ...options });
}

/** Like floodgate(), but a non-zero exit fails with the command's output. */
export async function floodgateOk(lab: Lab, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
  const r = await floodgate(lab, args, options);
  if (r.exitCode !== 0)
    throw new Error(
      `floodgate ${args.join(' ')} exited ${r.exitCode}\nstdout: ${r.stdout.trim()}\nstderr: ${r.stderr.trim()}`,
    );
  return r;
}

/** `floodgate list --json` for a state directory. */
export async function listBans(lab: Lab, stateDir: string, extra: readonly string[] = []): Promise<ListedBan[]> {
  const r = await floodgateOk(lab, ['list', '--json', '--state-dir', stateDir, ...extra]);
  return JSON.parse(r.stdout) as ListedBan[];
}

export interface Status {
  readonly daemon: { pid: number; since: string } | null;
  readonly mode: string;
  readonly active: number;
  readonly lastScan: { at: string; durationMs: number; sockets: number } | null;
}

export async function status(lab: Lab, stateDir: string): Promise<Status> {
  const r = await floodgate(lab, ['status', '--json', '--state-dir', stateDir]);
  const parsed = JSON.parse(r.stdout) as Status;
  // Exit 1 says that no daemon answered; any other failure is one.
  if (r.exitCode !== (parsed.daemon === null ? 1 : 0))
    throw new Error(`floodgate status exited ${r.exitCode}\nstderr: ${r.stderr.trim()}`);
  return parsed;
}

/**
 * Waits until the daemon has finished `passes` scans that read the table after `since` (from its
 * last-scan time: scans start one interval apart).
 */
export async function waitForScans(lab: Lab, stateDir: string, since: number, passes = 2): Promise<void> {
  const want = since + 100 + (passes - 1) * INTERVAL_MS;
  let seen = 'none';
  await waitFor(
    `${passes} scan(s) after ${new Date(since).toISOString()}`,
    async () => {
      const at = (await status(lab, stateDir)).lastScan?.at;
      seen = at ?? 'never';
      return at !== undefined && Date.parse(at) >= want;
    },
    { timeoutMs: passes * INTERVAL_MS + 10_000, intervalMs: 200, explain: () => `last scan seen: ${seen}` },
  );
}

// ---------------------------------------------------------------------------
// the daemon

/** One JSON log line of `floodgate run`. */
export type LogEvent = Record<string, unknown> & { event?: string; msg?: string; level?: number };

export interface DaemonOptions {
  readonly policy: string;
  readonly stateDir: string;
  /** --enforce; false runs the policy's mode (dry-run for a copy of the default). @default true */
  readonly enforce?: boolean;
  /** More arguments for `floodgate run` (--flush-on-exit). */
  readonly args?: readonly string[];
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const daemons = new Set<Daemon>();

export class Daemon {
  readonly events: LogEvent[] = [];
  stdout = '';
  stderr = '';
  exitStatus: Exit | null = null;
  readonly exited: Promise<Exit>;
  private readonly listeners = new Set<() => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly argv: readonly string[],
  ) {
    let partial = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.stdout += chunk;
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        try {
          this.events.push(JSON.parse(line) as LogEvent);
        } catch {
          this.events.push({ msg: line, unparsed: true });
        }
      }
      this.notify();
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise<Exit>((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        daemons.delete(this);
        resolve(this.exitStatus);
        this.notify();
      });
    });
  }

  /**
   * Starts `floodgate run [--enforce] --policy P --state-dir D --interval 1s` in the server
   * namespace and waits for its start line; when the test fails, the daemon's log is printed.
   */
  static async start(lab: Lab, options: DaemonOptions): Promise<Daemon> {
    const daemon = Daemon.spawn(lab, options);
    await daemon.waitForEvent('its start line', (e) => e.event === 'start', 15_000);
    return daemon;
  }

  /** The same `floodgate run`, without waiting for anything: for what it logs before its start line. */
  static spawn(lab: Lab, options: DaemonOptions): Daemon {
    const argv = [
      'run',
      ...(options.enforce === false ? [] : ['--enforce']),
      '--policy',
      options.policy,
      '--state-dir',
      options.stateDir,
      '--interval',
      '1s',
      ...(options.args ?? []),
    ];
    const daemon = new Daemon(lab.spawnServer([process.execPath, CLI, ...argv]), argv);
    daemons.add(daemon);
    try {
      onTestFailed(() => {
        console.error(`--- floodgate ${argv.join(' ')} (pid ${daemon.pid}) ---\n${daemon.logTail(60)}`);
      });
    } catch {
      // started outside a test (a hook): nothing to attach the log to
    }
    return daemon;
  }

  /** The node process itself: `ip netns exec` execs into it. */
  get pid(): number {
    return this.child.pid!;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  logTail(lines = 30): string {
    const out = this.stdout
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
    return `stdout (last ${lines} lines):\n${out}\nstderr:\n${this.stderr.trim() || '(empty)'}${this.exitStatus ? `\nexited: code ${this.exitStatus.code}, signal ${this.exitStatus.signal}` : ''}`;
  }

  /** The first log event (already seen or still to come) matching `match`. */
  waitForEvent(what: string, match: (event: LogEvent) => boolean, timeoutMs = 10_000): Promise<LogEvent> {
    return new Promise<LogEvent>((resolve, reject) => {
      const check = () => {
        const found = this.events.find(match);
        if (found) return done(() => resolve(found));
        if (this.exitStatus)
          return done(() => reject(new Error(`floodgate run exited before ${what}\n${this.logTail()}`)));
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new Error(
                `timed out after ${timeoutMs} ms waiting for ${what} in the log of floodgate run\n${this.logTail()}`,
              ),
            ),
          ),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`, reported as a failure). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<Exit> {
    if (this.exitStatus) return this.exitStatus;
    this.child.kill(signal);
    const timer = sleep(timeoutMs).then(() => null);
    const exit = await Promise.race([this.exited, timer]);
    if (exit === null) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`floodgate run did not exit within ${timeoutMs} ms of ${signal}\n${this.logTail()}`);
    }
    return exit;
  }
}

async function stopAllDaemons(): Promise<void> {
  await Promise.all(
    [...daemons].map(async (daemon) => {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
    }),
  );
}

// ---------------------------------------------------------------------------
// addresses

/** `${prefix}${from}` … `${prefix}${to}` (decimal last octet). */
export function range4(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
}

/** `${prefix}${hex(from)}` … (e.g. range6('2001:db8:1::', 1, 40) -> 2001:db8:1::1 … 2001:db8:1::28). */
export function range6(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${(from + i).toString(16)}`);
}

/**
 * The count a ban records: a scan may catch a flood while it is still building up, so it sees more
 * than the threshold and at most the whole flood.
 */
export function expectFloodCount(count: unknown, threshold: number, flood: number): void {
  expect(count).toBeTypeOf('number');
  expect(count as number).toBeGreaterThan(threshold);
  expect(count as number).toBeLessThanOrEqual(flood);
}

/** No stack trace: a user mistake or a missing tool is a message, not a crash. */
export const STACK_TRACE = /^\s+at .+\(?.*:\d+:\d+\)?$/m;
