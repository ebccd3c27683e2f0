// An in-memory firewall behind the FirewallBackend interface: it keeps its rules as a multiset (so a
// duplicate can exist, as in a real chain), records every commit, and fails on demand.
import type { CommitResult, FirewallBackend, FirewallChange } from '../../src/firewall/backend.js';
import { type Cidr, formatCidr, parseCidr } from '../../src/net/ip.js';

export class FakeBackend implements FirewallBackend {
  readonly kind = 'iptables';
  /** Rule targets now "in the kernel", one entry per rule. */
  rules: string[];
  /** The changes of every commit, in order; an empty commit shows as []. */
  readonly commits: FirewallChange[][] = [];
  /** The next commit throws this (a vanished tool, for example), then the fake works again. */
  throwOnNextCommit: Error | undefined;
  /** Changes to these targets fail one by one, as a bad rule would. */
  readonly failing = new Set<string>();
  private pending: FirewallChange[] = [];

  constructor(
    readonly dryRun = false,
    rules: readonly string[] = [],
  ) {
    this.rules = [...rules];
  }

  async init(): Promise<void> {}

  add(target: Cidr): void {
    this.pending.push({ op: 'add', target });
  }

  delete(target: Cidr): void {
    this.pending.push({ op: 'delete', target });
  }

  async commit(): Promise<CommitResult> {
    const changes = this.pending;
    this.pending = [];
    this.commits.push(changes);
    if (this.throwOnNextCommit !== undefined) {
      const error = this.throwOnNextCommit;
      this.throwOnNextCommit = undefined;
      throw error;
    }
    const result: CommitResult = { applied: [], failed: [] };
    for (const change of changes) {
      const key = formatCidr(change.target);
      if (this.failing.has(key)) {
        result.failed.push({ change, error: new Error(`rule for ${key} rejected`) });
        continue;
      }
      const at = this.rules.indexOf(key);
      if (change.op === 'add' && at < 0) this.rules.push(key);
      if (change.op === 'delete' && at >= 0) this.rules.splice(at, 1);
      result.applied.push(change);
    }
    return result;
  }

  async list(): Promise<Cidr[]> {
    return this.rules.map((key) => parseCidr(key)!);
  }

  async flush(): Promise<void> {
    this.rules = [];
  }

  command(change: FirewallChange): readonly string[] {
    return ['fakefw', change.op, formatCidr(change.target)];
  }

  /** Every change committed so far, as "add 198.51.100.7" lines, in order. */
  get history(): string[] {
    return this.commits.flat().map((c) => `${c.op} ${formatCidr(c.target)}`);
  }
}
