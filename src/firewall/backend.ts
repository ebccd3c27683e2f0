// The one interface every firewall sits behind (iptables, ipset, nftables, dry-run), after
// CrowdSec's bouncer: add/delete buffer changes, commit() applies them as one batch.
import type { Cidr } from '../net/ip.js';

export interface FirewallChange {
  readonly op: 'add' | 'delete';
  readonly target: Cidr;
  /** When the ban ends (ms since the epoch): backends with kernel timeouts use it as a safety net. */
  readonly expiresAt?: number;
}

/** A set that cannot take more entries: the ban is refused loudly, never silently lost. */
export class FirewallFullError extends Error {}

export interface CommitResult {
  /** Changes the firewall now reflects (including deletes of rules that were already gone). */
  readonly applied: FirewallChange[];
  /** Changes that failed, each with the reason; the caller logs them and retries later. */
  readonly failed: { change: FirewallChange; error: Error }[];
}

export interface FirewallBackend {
  readonly kind: 'iptables' | 'ipset' | 'nftables';
  /** True when nothing is changed in the kernel and commands are only shown. */
  readonly dryRun: boolean;
  /** Checks tools and privileges; creates what the backend needs (sets, tables). */
  init(): Promise<void>;
  add(target: Cidr, expiresAt?: number): void;
  delete(target: Cidr): void;
  /** Applies the buffered changes; adding a present rule or deleting an absent one is not an error. */
  commit(): Promise<CommitResult>;
  /** Targets floodgate's own rules cover now, once per rule (a duplicate shows twice). */
  list(): Promise<Cidr[]>;
  /** Removes every rule, set or table floodgate owns. */
  flush(): Promise<void>;
  /**
   * Puts back what the backend needs besides the targets (the rule that references a set, a table)
   * when something removed it; returns how many pieces it restored.
   */
  repair?(): Promise<number>;
  /** The classic single command that makes this change by hand, for logs and dry-run. */
  command(change: FirewallChange): readonly string[];
}
