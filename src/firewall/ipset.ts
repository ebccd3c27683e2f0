// The ipset backend: sets floodgate4/floodgate6 (floodgate-<id>-4/-6 for a state directory other
// than the default; see instance.ts) (hash:net, timeout support, maxelem from
// ban.max_active) and one rule per family that references them, so a packet costs one hash lookup
// whatever the ban count. Changes are batched through `ipset restore -exist`.
import { BackendUnavailableError } from '../errors.js';
import { type Cidr, type Family, formatCidr, parseCidr } from '../net/ip.js';
import type { CommandRunner } from '../system/command-runner.js';
import { type CommitResult, type FirewallBackend, type FirewallChange, FirewallFullError } from './backend.js';
import { ChangeBuffer, applyBatch } from './apply-batch.js';
import { DEFAULT_INSTANCE, type FirewallInstance } from './instance.js';

export interface IpsetOptions {
  /** The chain the set's rule goes in: INPUT by default; PREROUTING for the raw table. */
  readonly chain: string;
  readonly table: 'filter' | 'raw';
  readonly target: 'DROP' | 'REJECT';
  readonly maxElements: number;
  /** Whose sets and rules these are. @default DEFAULT_INSTANCE (floodgate4/floodgate6) */
  readonly instance?: FirewallInstance;
}

/** Kernel timeouts are a safety net for a floodgate that is gone: they outlive the ban by this much. */
export const SAFETY_MARGIN_S = 600;
const MAX_TIMEOUT_S = 2_147_483;

export function kernelTimeout(expiresAt: number | undefined, now: number): number {
  if (expiresAt === undefined) return 0;
  return Math.min(MAX_TIMEOUT_S, Math.max(1, Math.ceil((expiresAt - now) / 1000)) + SAFETY_MARGIN_S);
}

/** hash:net shows a host without its /32 or /128, as formatCidr does. */
const entry = (target: Cidr): string => formatCidr(target);

export class IpsetBackend implements FirewallBackend {
  readonly kind = 'ipset';
  readonly dryRun = false;
  private readonly buffer = new ChangeBuffer((change) => formatCidr(change.target));

  constructor(
    private readonly runner: CommandRunner,
    private readonly options: IpsetOptions,
    private readonly clock: () => number = Date.now,
  ) {}

  private get instance(): FirewallInstance {
    return this.options.instance ?? DEFAULT_INSTANCE;
  }

  private setName(family: Family): string {
    return this.instance.sets[family];
  }

  private chain(): string {
    return this.options.table === 'raw' && this.options.chain === 'INPUT' ? 'PREROUTING' : this.options.chain;
  }

  private iptables(family: Family): string {
    return family === 4 ? 'iptables' : 'ip6tables';
  }

  /** The rule that sends the set's members to the target, for -C (check), -I (insert first) or -D. */
  private ruleArgv(family: Family, op: '-C' | '-I' | '-D'): string[] {
    return [
      this.iptables(family),
      '-w',
      ...(this.options.table === 'raw' ? ['-t', 'raw'] : []),
      op,
      this.chain(),
      ...(op === '-I' ? ['1'] : []),
      '-m',
      'set',
      '--match-set',
      this.setName(family),
      'src',
      '-m',
      'comment',
      '--comment',
      this.instance.tag,
      '-j',
      this.options.target,
    ];
  }

  private createArgv(family: Family): string[] {
    return [
      'ipset',
      'create',
      this.setName(family),
      'hash:net',
      'family',
      family === 4 ? 'inet' : 'inet6',
      'timeout',
      '0',
      'maxelem',
      String(this.options.maxElements),
      '-exist',
    ];
  }

  command(change: FirewallChange): string[] {
    const set = this.setName(change.target.family);
    if (change.op === 'delete') return ['ipset', 'del', set, entry(change.target), '-exist'];
    return [
      'ipset',
      'add',
      set,
      entry(change.target),
      'timeout',
      String(kernelTimeout(change.expiresAt, this.clock())),
      '-exist',
    ];
  }

  async init(): Promise<void> {
    if (this.options.table === 'raw' && this.options.target === 'REJECT') {
      throw new BackendUnavailableError(
        'firewall.target REJECT is not possible in the raw table: use DROP, or firewall.table: filter',
      );
    }
    if (process.getuid?.() !== 0) {
      throw new BackendUnavailableError(
        'enforce mode needs root to change the firewall: run it ' +
          'as root (sudo), or use --dry-run to only show the rules',
      );
    }
    const probe = await this.runner.run(['ipset', 'version'], { reject: false });
    if (probe.exitCode !== 0)
      throw new BackendUnavailableError(
        `ipset cannot be used: ${probe.stderr.trim() || 'it failed'} (is the ip_set kernel module available?)`,
      );
    await this.repair();
  }

  /**
   * Setup changes one at a time: a flush through the daemon is followed by a repair while the
   * daemon's reconcile may be repairing too, and two checks that both find the rule missing would
   * insert it twice.
   */
  private setupLock: Promise<unknown> = Promise.resolve();

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.setupLock.then(task, task);
    this.setupLock = run.catch(() => undefined);
    return run;
  }

  /** Creates missing sets (or resizes one whose maxelem differs) and inserts missing rules. */
  repair(): Promise<number> {
    return this.serialized(() => this.repairNow());
  }

  private async repairNow(): Promise<number> {
    let restored = 0;
    for (const family of [4, 6] as const) {
      const header = await this.runner.run(['ipset', 'list', this.setName(family), '-t'], { reject: false });
      if (header.exitCode !== 0) {
        await this.runner.run(this.createArgv(family), { retries: 2 });
        restored++;
      } else if (
        !header.stdout.includes(`maxelem ${this.options.maxElements} `) ||
        !header.stdout.includes('timeout')
      ) {
        await this.resize(family);
      }
      const check = await this.runner.run(this.ruleArgv(family, '-C'), { reject: false });
      if (check.exitCode !== 0) {
        if (check.exitCode !== 1)
          throw new BackendUnavailableError(
            `${this.iptables(family)} cannot check floodgate's set rule: ${check.stderr.trim()}`,
          );
        // First in the chain: a set lookup is cheap, and a ban must win over an earlier ACCEPT.
        await this.runner.run(this.ruleArgv(family, '-I'), { retries: 3 });
        restored++;
      }
    }
    return restored;
  }

  /** A set made with another maxelem (policy change): copy it into a new one and swap them. */
  private async resize(family: Family): Promise<void> {
    const name = this.setName(family);
    const next = `${name}-next`;
    await this.runner.run(['ipset', 'destroy', next], { reject: false });
    const create = this.createArgv(family);
    create[2] = next;
    await this.runner.run(create);
    const saved = await this.runner.run(['ipset', 'save', name]);
    const adds = saved.stdout
      .split('\n')
      .filter((line) => line.startsWith(`add ${name} `))
      .map((line) => line.replace(`add ${name} `, `add ${next} `));
    if (adds.length > 0) await this.runner.run(['ipset', 'restore', '-exist'], { input: `${adds.join('\n')}\n` });
    await this.runner.run(['ipset', 'swap', name, next]);
    await this.runner.run(['ipset', 'destroy', next]);
  }

  add(target: Cidr, expiresAt?: number): void {
    this.buffer.add({ op: 'add', target, ...(expiresAt !== undefined && { expiresAt }) });
  }

  delete(target: Cidr): void {
    this.buffer.add({ op: 'delete', target });
  }

  async commit(): Promise<CommitResult> {
    const changes = this.buffer.take();
    const result: CommitResult = { applied: [], failed: [] };
    const lines = changes.map((change) => this.command(change).slice(1).join(' '));
    // restore stops at its first bad line; the one-by-one pass then finds which it was.
    await applyBatch(
      changes,
      {
        batch: async () =>
          void (await this.runner.run(['ipset', 'restore', '-exist'], { input: `${lines.join('\n')}\n`, retries: 2 })),
        single: async (change) => void (await this.runner.run(this.command(change), { retries: 2 })),
        explain: (error, change) =>
          /is full|cannot add more/i.test(error.stderr)
            ? new FirewallFullError(
                `${this.setName(change.target.family)} is full (maxelem ${this.options.maxElements})`,
                { cause: error },
              )
            : error,
      },
      result,
    );
    return result;
  }

  async list(): Promise<Cidr[]> {
    const out: Cidr[] = [];
    for (const family of [4, 6] as const) {
      const saved = await this.runner.run(['ipset', 'save', this.setName(family)], { reject: false });
      if (saved.exitCode !== 0) continue; // the set is gone: repair() recreates it
      // "add floodgate4 198.51.100.7 timeout 3599": read in place, no array of lines or of words
      // (a set of 100k entries is listed at every reconcile).
      const text = saved.stdout;
      const prefix = `add ${this.setName(family)} `;
      const lineStart = `\n${prefix}`;
      const after = (from: number): number => {
        const found = text.indexOf(lineStart, from);
        return found < 0 ? -1 : found + 1;
      };
      for (let at = text.startsWith(prefix) ? 0 : after(0); at >= 0; ) {
        const start = at + prefix.length;
        let end = start;
        while (end < text.length && text.charCodeAt(end) !== 32 && text.charCodeAt(end) !== 10) end++;
        const cidr = parseCidr(text.slice(start, end));
        if (cidr !== null && cidr.family === family) out.push(cidr);
        at = after(end);
      }
    }
    return out;
  }

  flush(): Promise<void> {
    this.buffer.clear();
    return this.serialized(() => this.flushNow());
  }

  private async flushNow(): Promise<void> {
    for (const family of [4, 6] as const) {
      // Every copy of the rule, then the set (a set still referenced cannot be destroyed).
      for (let i = 0; i < 10; i++) {
        const removed = await this.runner.run(this.ruleArgv(family, '-D'), { reject: false });
        if (removed.exitCode !== 0) break;
      }
      await this.runner.run(['ipset', 'destroy', this.setName(family)], { reject: false });
    }
  }
}
