// The classic backend: one tagged rule per target, `-A INPUT -s <cidr> -m comment --comment
// floodgate -j DROP` (the tag is the instance's: `floodgate-<id>` for a state directory other than
// the default), batched through iptables-restore --noflush (ip6tables-restore for IPv6).
import { BackendUnavailableError } from '../errors.js';
import { type Cidr, type Family, formatCidrWithPrefix, parseCidr } from '../net/ip.js';
import type { CommandRunner } from '../system/command-runner.js';
import { applyBatch } from './apply-batch.js';
import type { CommitResult, FirewallBackend, FirewallChange } from './backend.js';
import { DEFAULT_INSTANCE, type FirewallInstance } from './instance.js';

export interface IptablesOptions {
  /** @default 'INPUT' */
  readonly chain: string;
  /** @default 'DROP' */
  readonly target: 'DROP' | 'REJECT';
  /** Whose rules these are. @default DEFAULT_INSTANCE (tag `floodgate`) */
  readonly instance?: FirewallInstance;
}

const key = (cidr: Cidr): string => `${cidr.family}|${cidr.value}|${cidr.prefix}`;

export class IptablesBackend implements FirewallBackend {
  readonly kind = 'iptables';
  readonly dryRun = false;
  private pending = new Map<string, FirewallChange>();
  /** Deletes asked for more than once in a batch: surplus copies of a duplicated rule. */
  private copies = new Map<string, number>();

  constructor(
    private readonly runner: CommandRunner,
    private readonly options: IptablesOptions,
  ) {}

  private get tag(): string {
    return (this.options.instance ?? DEFAULT_INSTANCE).tag;
  }

  private tool(family: Family, restore = false): string {
    return `${family === 4 ? 'iptables' : 'ip6tables'}${restore ? '-restore' : ''}`;
  }

  /** The rule's specification after the chain: the same for -A, -D and restore lines. */
  ruleSpec(target: Cidr): string[] {
    return ['-s', formatCidrWithPrefix(target), '-m', 'comment', '--comment', this.tag, '-j', this.options.target];
  }

  command(change: FirewallChange): string[] {
    return [
      this.tool(change.target.family),
      '-w',
      change.op === 'add' ? '-A' : '-D',
      this.options.chain,
      ...this.ruleSpec(change.target),
    ];
  }

  async init(): Promise<void> {
    if (process.getuid?.() !== 0) {
      throw new BackendUnavailableError(
        'enforce mode needs root to change the firewall: run it ' +
          'as root (sudo), or use --dry-run to only show the rules',
      );
    }
    for (const family of [4, 6] as const) {
      const probe = await this.runner.run([this.tool(family), '-w', '-S', this.options.chain], { reject: false });
      if (probe.exitCode !== 0) {
        const reason = /chain .*exist|No chain/i.test(probe.stderr)
          ? `chain ${this.options.chain} does not exist in the filter table (firewall.chain in the policy)`
          : probe.stderr.trim();
        throw new BackendUnavailableError(`${this.tool(family)} cannot be used: ${reason}`);
      }
    }
  }

  add(target: Cidr): void {
    this.pending.set(key(target), { op: 'add', target });
    this.copies.delete(key(target));
  }

  delete(target: Cidr): void {
    const k = key(target);
    const waiting = this.pending.get(k);
    this.copies.set(k, waiting?.op === 'delete' ? (this.copies.get(k) ?? 1) + 1 : 1);
    this.pending.set(k, { op: 'delete', target });
  }

  private async listFamily(family: Family): Promise<Cidr[]> {
    const { stdout } = await this.runner.run([this.tool(family), '-w', '-S', this.options.chain], { retries: 3 });
    const owned: Cidr[] = [];
    const prefix = `-A ${this.options.chain} `;
    // iptables -S prints REJECT with its default option, which floodgate's rule leaves implicit.
    const implicit =
      this.options.target === 'REJECT' ? ` --reject-with icmp${family === 4 ? '' : '6'}-port-unreachable` : '';
    for (const printed of stdout.split('\n')) {
      const line = implicit !== '' && printed.endsWith(implicit) ? printed.slice(0, -implicit.length) : printed;
      if (!line.startsWith(prefix) || !line.endsWith(`-j ${this.options.target}`)) continue;
      const tokens = line.split(' ');
      // The whole comment, never a prefix of it: `floodgate` and `floodgate-<id>` are different owners.
      if (tokens[tokens.indexOf('--comment') + 1] !== this.tag) continue;
      const at = tokens.indexOf('-s');
      // iptables prints a /0 source as no -s at all: such a rule (from an old or damaged ban store)
      // drops everything, and must be recognised to be removed.
      const source = at < 0 ? (family === 4 ? '0.0.0.0/0' : '::/0') : tokens[at + 1];
      const cidr = source === undefined ? null : parseCidr(source);
      // Only the exact rule floodgate writes is floodgate's: a rule with more matches is someone else's.
      if (cidr !== null && tokens.length === (at < 0 ? 0 : 2) + this.ruleSpec(cidr).length) owned.push(cidr);
    }
    return owned;
  }

  async list(): Promise<Cidr[]> {
    const [v4, v6] = await Promise.all([this.listFamily(4), this.listFamily(6)]);
    return [...v4, ...v6];
  }

  async commit(): Promise<CommitResult> {
    const changes = [...this.pending.values()];
    const copies = this.copies;
    this.pending = new Map();
    this.copies = new Map();
    const result: CommitResult = { applied: [], failed: [] };
    for (const family of [4, 6] as const) {
      const mine = changes.filter((c) => c.target.family === family);
      if (mine.length > 0) await this.commitFamily(family, mine, copies, result);
    }
    return result;
  }

  private async commitFamily(
    family: Family,
    changes: FirewallChange[],
    copies: ReadonlyMap<string, number>,
    result: CommitResult,
  ): Promise<void> {
    const present = new Map<string, number>();
    for (const cidr of await this.listFamily(family)) present.set(key(cidr), (present.get(key(cidr)) ?? 0) + 1);
    const lines: string[] = [];
    const effective: FirewallChange[] = [];
    for (const change of changes) {
      const has = (present.get(key(change.target)) ?? 0) > 0;
      // Idempotent: never a second copy of a rule, and deleting an absent rule is already done.
      if ((change.op === 'add') === has) {
        result.applied.push(change);
        continue;
      }
      const line = [change.op === 'add' ? '-A' : '-D', this.options.chain, ...this.ruleSpec(change.target)].join(' ');
      // -D removes one copy; a delete asked for n times removes up to n of the copies present.
      const times =
        change.op === 'add' ? 1 : Math.min(copies.get(key(change.target)) ?? 1, present.get(key(change.target)) ?? 0);
      for (let i = 0; i < times; i++) lines.push(line);
      effective.push(change);
    }
    const input = `*filter\n${lines.join('\n')}\nCOMMIT\n`;
    // iptables-restore is all or nothing; the one-by-one pass makes one bad rule cost only itself.
    await applyBatch(
      effective,
      {
        batch: async () =>
          void (await this.runner.run([this.tool(family, true), '-w', '--noflush'], { input, retries: 3 })),
        single: async (change) => void (await this.runner.run(this.command(change), { retries: 3 })),
      },
      result,
    );
  }

  async flush(): Promise<void> {
    for (const cidr of await this.list()) this.delete(cidr);
    // Duplicates: delete until none is left.
    for (let round = 0; round < 10 && this.pending.size > 0; round++) {
      const { failed } = await this.commit();
      if (failed.length > 0) throw failed[0]!.error;
      for (const cidr of await this.list()) this.delete(cidr);
    }
  }
}
