// The nftables backend: floodgate's own table `inet floodgate` (`inet floodgate-<id>` for a state
// directory other than the default; see instance.ts) with timeout sets and one chain
// hooked at input (or prerouting), every change batch one `nft -f -` transaction.
//
// Addresses and networks live in separate sets: nftables refuses an interval set element that
// overlaps another ("interval overlaps with an existing one"), and a banned address inside a banned
// network is normal here. Addresses go in plain hash sets (hosts4/hosts6), networks in interval sets
// (nets4/nets6), all with `flags timeout`.
import { BackendUnavailableError, CommandFailedError } from '../errors.js';
import { type Cidr, bitsOf, cidrContains, formatCidr, parseCidr } from '../net/ip.js';
import type { CommandRunner } from '../system/command-runner.js';
import { ChangeBuffer, applyBatch } from './apply-batch.js';
import { type CommitResult, type FirewallBackend, type FirewallChange, FirewallFullError } from './backend.js';
import { DEFAULT_INSTANCE, type FirewallInstance } from './instance.js';
import { kernelTimeout } from './ipset.js';

export interface NftablesOptions {
  readonly hook: 'input' | 'prerouting';
  readonly target: 'DROP' | 'REJECT';
  readonly maxElements: number;
  /** Whose table this is. @default DEFAULT_INSTANCE (table `inet floodgate`) */
  readonly instance?: FirewallInstance;
}

const isHost = (target: Cidr): boolean => target.prefix === bitsOf(target.family);

export function setName(target: Cidr): string {
  return `${isHost(target) ? 'hosts' : 'nets'}${target.family}`;
}

export class NftablesBackend implements FirewallBackend {
  readonly kind = 'nftables';
  readonly dryRun = false;
  private readonly buffer = new ChangeBuffer((change) => formatCidr(change.target));

  constructor(
    private readonly runner: CommandRunner,
    private readonly options: NftablesOptions,
    private readonly clock: () => number = Date.now,
  ) {}

  private get table(): string {
    return (this.options.instance ?? DEFAULT_INSTANCE).table;
  }

  /** The whole table, as one transaction; `add` of existing objects is a no-op in nft. */
  tableScript(): string {
    const size = this.options.maxElements;
    const table = this.table;
    const verdict = this.options.target === 'DROP' ? 'drop' : 'reject';
    const hook =
      this.options.hook === 'input'
        ? 'type filter hook input priority -10'
        : 'type filter hook prerouting priority -300';
    return [
      `add table inet ${table}`,
      `add set inet ${table} hosts4 { type ipv4_addr; flags timeout; size ${size}; }`,
      `add set inet ${table} nets4 { type ipv4_addr; flags interval, timeout; size ${size}; }`,
      `add set inet ${table} hosts6 { type ipv6_addr; flags timeout; size ${size}; }`,
      `add set inet ${table} nets6 { type ipv6_addr; flags interval, timeout; size ${size}; }`,
      `add chain inet ${table} filter { ${hook}; policy accept; }`,
      `flush chain inet ${table} filter`,
      `add rule inet ${table} filter ip saddr @hosts4 counter ${verdict}`,
      `add rule inet ${table} filter ip saddr @nets4 counter ${verdict}`,
      `add rule inet ${table} filter ip6 saddr @hosts6 counter ${verdict}`,
      `add rule inet ${table} filter ip6 saddr @nets6 counter ${verdict}`,
      '',
    ].join('\n');
  }

  /** The element as written between the braces: "198.51.100.7 timeout 4200s", "198.51.100.0/24". */
  private element(change: FirewallChange): string {
    const value = formatCidr(change.target);
    if (change.op === 'delete') return value;
    const timeout = kernelTimeout(change.expiresAt, this.clock());
    return timeout > 0 ? `${value} timeout ${timeout}s` : value;
  }

  private elementLine(change: FirewallChange): string {
    return `${change.op} element inet ${this.table} ${setName(change.target)} { ${this.element(change)} }`;
  }

  command(change: FirewallChange): string[] {
    const argv = this.elementLine(change).split(' ');
    argv.unshift('nft');
    return argv;
  }

  async init(): Promise<void> {
    if (this.options.hook === 'prerouting' && this.options.target === 'REJECT') {
      throw new BackendUnavailableError(
        'firewall.target REJECT is not possible at prerouting: use DROP, or firewall.table: filter',
      );
    }
    if (process.getuid?.() !== 0) {
      throw new BackendUnavailableError(
        'enforce mode needs root to change the firewall: run it ' +
          'as root (sudo), or use --dry-run to only show the rules',
      );
    }
    await this.ensureTable();
  }

  private async ensureTable(): Promise<void> {
    try {
      await this.runner.run(['nft', '-f', '-'], { input: this.tableScript(), retries: 2 });
    } catch (error) {
      if (error instanceof CommandFailedError && /size|exists|File exists/i.test(error.stderr)) {
        // A table made with another ban.max_active: sets cannot be resized in place. Keep the
        // elements, rebuild the table, put them back.
        const kept = await this.list();
        await this.runner.run(['nft', 'delete', 'table', 'inet', this.table]);
        await this.runner.run(['nft', '-f', '-'], { input: this.tableScript() });
        for (const target of kept) this.add(target);
        await this.commit();
        return;
      }
      throw error;
    }
  }

  /** Restores the table, sets and chain when something (`nft flush ruleset`) removed them. */
  async repair(): Promise<number> {
    const probe = await this.runner.run(['nft', 'list', 'chain', 'inet', this.table, 'filter'], { reject: false });
    const intact = probe.exitCode === 0 && (probe.stdout.match(/saddr @/g)?.length ?? 0) === 4;
    if (intact) return 0;
    await this.ensureTable();
    return 1;
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
    if (changes.length === 0) return result;
    // A delete of an absent element fails the whole transaction, and so does a network that
    // overlaps another in the interval set: look at what is there first.
    const needsList = changes.some((c) => c.op === 'delete' || !isHost(c.target));
    const listed = needsList ? await this.list() : [];
    const present = new Set(listed.map(formatCidr));
    const nets = listed.filter((c) => !isHost(c));
    const effective: FirewallChange[] = [];
    const transaction = new ElementStatements(this.table);
    for (const change of changes) {
      const key = formatCidr(change.target);
      if (change.op === 'delete') {
        if (present.has(key)) {
          effective.push(change);
          transaction.push('delete', setName(change.target), this.element(change));
          present.delete(key);
        } else result.applied.push(change);
        continue;
      }
      if (!isHost(change.target)) {
        // Inside a network already in the set: that element drops its traffic already.
        if (
          nets.some(
            (net) =>
              present.has(formatCidr(net)) && net.prefix < change.target.prefix && cidrContains(net, change.target),
          )
        ) {
          result.applied.push(change);
          continue;
        }
        // Around networks already in the set: they are redundant while this one is there.
        for (const net of nets) {
          if (present.has(formatCidr(net)) && net.prefix > change.target.prefix && cidrContains(change.target, net)) {
            transaction.push('delete', setName(net), formatCidr(net));
            present.delete(formatCidr(net));
          }
        }
        if (present.has(key)) {
          result.applied.push(change);
          continue;
        }
      }
      effective.push(change);
      transaction.push('add', setName(change.target), this.element(change));
      // Later changes of this batch must see it too.
      present.add(key);
      if (!isHost(change.target)) nets.push(change.target);
    }
    // The transaction is all or nothing; the one-by-one pass makes one bad element cost only itself.
    await applyBatch(
      effective,
      {
        batch: async () =>
          void (await this.runner.run(['nft', '-f', '-'], { input: transaction.script(), retries: 2 })),
        single: async (change) =>
          void (await this.runner.run(['nft', '-f', '-'], { input: `${this.elementLine(change)}\n`, retries: 2 })),
        explain: (error, change) =>
          /set is full|No space left/i.test(error.stderr)
            ? new FirewallFullError(`${setName(change.target)} is full (size ${this.options.maxElements})`, {
                cause: error,
              })
            : error,
      },
      result,
    );
    return result;
  }

  async list(): Promise<Cidr[]> {
    const out: Cidr[] = [];
    const listed = await this.runner.run(['nft', '-j', 'list', 'table', 'inet', this.table], { reject: false });
    if (listed.exitCode !== 0) return out; // no table: repair() recreates it
    type Elem =
      | string
      | { prefix: { addr: string; len: number } }
      | { elem: { val: Elem } }
      | { range: [string, string] };
    const parsed = JSON.parse(listed.stdout) as { nftables: { set?: { name: string; elem?: Elem[] } }[] };
    const toCidr = (value: Elem): Cidr | null => {
      if (typeof value === 'string') return parseCidr(value);
      if ('elem' in value) return toCidr(value.elem.val);
      if ('prefix' in value) return parseCidr(`${value.prefix.addr}/${value.prefix.len}`);
      return null;
    };
    for (const item of parsed.nftables) {
      if (!item.set || !/^(hosts|nets)[46]$/.test(item.set.name)) continue;
      for (const value of item.set.elem ?? []) {
        const cidr = toCidr(value);
        if (cidr !== null) out.push(cidr);
      }
    }
    return out;
  }

  async flush(): Promise<void> {
    this.buffer.clear();
    await this.runner.run(['nft', 'delete', 'table', 'inet', this.table], { reject: false });
  }
}

/**
 * A transaction's element changes, consecutive ones to the same set in one statement
 * (`add element inet floodgate hosts4 { a timeout 4200s, b timeout 4200s, … }`): nft takes 10k
 * elements in one statement in about half the time of 10k one-element statements. The order of the
 * changes is kept.
 */
class ElementStatements {
  private readonly statements: { op: FirewallChange['op']; set: string; elements: string[] }[] = [];

  constructor(private readonly table: string) {}

  push(op: FirewallChange['op'], set: string, element: string): void {
    const last = this.statements.at(-1);
    if (last !== undefined && last.op === op && last.set === set) last.elements.push(element);
    else this.statements.push({ op, set, elements: [element] });
  }

  script(): string {
    return this.statements
      .map(({ op, set, elements }) => `${op} element inet ${this.table} ${set} { ${elements.join(', ')} }\n`)
      .join('');
  }
}
