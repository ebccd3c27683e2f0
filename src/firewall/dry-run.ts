// The dry-run backend: changes nothing in the kernel; shows the exact command the real backend
// would run for each change and remembers the would-be rules so that `list` can show them.
import type { Cidr } from '../net/ip.js';
import type { CommitResult, FirewallBackend, FirewallChange } from './backend.js';

export type CommandLog = (change: FirewallChange, argv: readonly string[]) => void;

const key = (cidr: Cidr): string => `${cidr.family}|${cidr.value}|${cidr.prefix}`;

export class DryRunBackend implements FirewallBackend {
  readonly dryRun = true;
  private readonly rules = new Map<string, Cidr>();
  private pending: FirewallChange[] = [];

  constructor(
    /** The backend whose commands are shown; it is never initialised or called. */
    private readonly real: Pick<FirewallBackend, 'kind' | 'command'>,
    private readonly log: CommandLog,
    /** Would-be rules of a previous run, so that a restart does not show them again. */
    existing: Iterable<Cidr> = [],
  ) {
    for (const cidr of existing) this.rules.set(key(cidr), cidr);
  }

  get kind() {
    return this.real.kind;
  }

  command(change: FirewallChange): readonly string[] {
    return this.real.command(change);
  }

  async init(): Promise<void> {}

  add(target: Cidr, expiresAt?: number): void {
    this.pending.push({ op: 'add', target, ...(expiresAt !== undefined && { expiresAt }) });
  }

  delete(target: Cidr): void {
    this.pending.push({ op: 'delete', target });
  }

  async commit(): Promise<CommitResult> {
    const applied = this.pending;
    this.pending = [];
    for (const change of applied) {
      const present = this.rules.has(key(change.target));
      if ((change.op === 'add') === present) continue;
      if (change.op === 'add') this.rules.set(key(change.target), change.target);
      else this.rules.delete(key(change.target));
      this.log(change, this.real.command(change));
    }
    return { applied, failed: [] };
  }

  async list(): Promise<Cidr[]> {
    return [...this.rules.values()];
  }

  async flush(): Promise<void> {
    for (const cidr of this.rules.values()) this.delete(cidr);
    await this.commit();
  }
}
