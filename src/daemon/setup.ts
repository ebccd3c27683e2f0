// Builds the enforcement side from a policy: the state directory, the ban store, the backend (real
// or dry-run), the hooks and the enforcer. Shared by the daemon and the manual commands.
import { BanStore } from '../bans/ban-store.js';
import { Enforcer } from '../enforce/enforcer.js';
import type { FirewallBackend } from '../firewall/backend.js';
import { createBackend, removeOtherBackends } from '../firewall/create-backend.js';
import { DryRunBackend } from '../firewall/dry-run.js';
import { ReloadHook } from '../hooks/reload-hook.js';
import type { Logger } from '../log.js';
import { buildAllowlist, hostAddresses } from '../net/allowlist.js';
import type { CidrSet } from '../net/cidr-set.js';
import { parseCidr } from '../net/ip.js';
import type { Policy } from '../policy/schema.js';
import { ExecaRunner } from '../system/command-runner.js';
import { shellCommand } from '../system/shell-quote.js';
import { stateDirInstance } from './instance-id.js';
import { type Mode, stateFile } from './state-dir.js';

export type { Mode };

export interface Enforcement {
  readonly enforcer: Enforcer;
  readonly backend: FirewallBackend;
}

export interface OpenOptions {
  /** Only the daemon migrates bans away from other backends; a manual command never does. */
  readonly migrate?: boolean;
}

export async function openEnforcement(
  policy: Policy,
  mode: Mode,
  stateDir: string,
  log: Logger,
  options: OpenOptions = {},
): Promise<Enforcement> {
  const runner = new ExecaRunner((event) => log.debug({ event: 'command', ...event }, shellCommand(event.argv)));
  // This state directory's own rules, sets and table: another floodgate's are never touched.
  const instance = stateDirInstance(stateDir);
  const real = createBackend(policy, runner, instance);
  const store = BanStore.load(
    stateFile(stateDir, mode),
    { ttl: policy.ban.ttl, maxTtl: policy.ban.max_ttl },
    { repair: true },
  );
  reportLoad(store, log);
  const protectedSet = buildAllowlist(policy.allowlist, hostAddresses());
  dropProtected(store, protectedSet, log);
  let backend: FirewallBackend = real;
  if (mode === 'dry-run') {
    backend = new DryRunBackend(
      real,
      (change, argv) =>
        log.debug(
          { event: 'dry-run-command', op: change.op, command: shellCommand(argv) },
          `dry-run: would run ${shellCommand(argv)}`,
        ),
      store.targets(),
    );
  } else {
    await real.init();
    const removed = options.migrate ? await removeOtherBackends(policy, runner, instance) : [];
    if (removed.length > 0)
      log.warn(
        { event: 'migrate', from: removed, to: real.kind },
        `firewall.backend is ${real.kind}: removed floodgate's rules from ` +
          `${removed.join(', ')}; active bans are re-applied through ${real.kind}`,
      );
  }
  const reload = policy.reload && new ReloadHook(policy.reload, runner, log, mode === 'dry-run');
  const enforcer = new Enforcer({
    backend,
    store,
    log,
    runner,
    protectedSet,
    rate: policy.ban.rate,
    maxActive: policy.ban.max_active,
    killConnections: policy.ban.kill_connections,
    ...(reload && { reload }),
  });
  return { enforcer, backend };
}

/** Says what loading the ban store left out, and where the original file is. */
function reportLoad(store: BanStore, log: Logger): void {
  const report = store.loadReport;
  if (report === undefined) return;
  const shown =
    report.problems.slice(0, 5).join('; ') +
    (report.problems.length > 5 ? `; and ${report.problems.length - 5} more` : '');
  if (report.discarded) {
    log.error(
      { event: 'store-discarded', file: store.file, aside: report.aside, why: report.problems[0] },
      `the ban store ${store.file} could not be used (${shown}): set aside as ${report.aside}; starting with no bans`,
    );
  } else {
    log.error(
      {
        event: 'store-entries-dropped',
        file: store.file,
        aside: report.aside,
        dropped: report.problems.length,
        problems: report.problems.slice(0, 100),
      },
      `the ban store ${store.file} had ${report.problems.length} ` +
        `invalid entr${report.problems.length === 1 ? 'y' : 'ies'}, ` +
        `left out (${shown}); the original is kept as ${report.aside}`,
    );
  }
}

/**
 * The detector never bans an allowlisted, loopback or own address: a detector ban in the store that
 * covers one (a damaged store, or an allowlist extended since) is dropped, and reconcile removes its
 * rule. A manual ban may have been forced (--force), which the store does not record: it stays.
 */
function dropProtected(store: BanStore, protectedSet: CidrSet, log: Logger): void {
  const dropped: string[] = [];
  for (const ban of store.values()) {
    if (ban.rule !== 'manual' && protectedSet.overlaps(parseCidr(ban.target)!)) dropped.push(ban.target);
  }
  for (const target of dropped) {
    store.remove(target);
    log.warn(
      { event: 'store-entries-dropped', target, why: 'protected' },
      `dropped the ban of ${target} from the store: it covers an ` +
        'allowlisted, loopback or own address, which the detector never bans',
    );
  }
}
