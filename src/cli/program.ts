// floodgate's commands: declares them and maps typed errors to exit codes. Each command's code is
// loaded only when that command runs, so `scan` starts as fast as node can. main.cts loads this.
import { Command, CommanderError, Option } from 'commander';
import { FloodgateError } from '../errors.js';
import { LOG_FORMATS, LOG_LEVELS } from '../log-format.js';
import { BOUNDS } from '../policy/duration.js';
import { FORMATS } from '../table/parse-table.js';
import { VERSION_ARGS, version } from './version.cjs';
import { choiceOption, collect, collectPorts, collectStates, durationOption, wholeNumberOption } from './options.js';

const program = new Command('floodgate')
  .description(
    'Connection-flood mitigation for Linux servers: kernel ' +
      'connection table -> detector -> rate-limited queue -> firewall',
  )
  .version(version(), '-V, --version', 'print the version (also -v)')
  // One style for every error: commander's own say `floodgate:` too, as the commands' do.
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'floodgate: ')) })
  .showHelpAfterError('(run floodgate --help for usage)')
  .exitOverride();

program
  .command('scan')
  .description(
    'report on the connection table: totals per state and the top sources ' +
      '(the classic `netstat | awk | sort | uniq -c` pipeline in one command)',
  )
  .option(
    '-i, --input <file>',
    'read a captured table (/proc/net/tcp*, netstat -an, ss -tan output; gzip or not) instead of the ' +
      'live kernel, or a /proc/net/netstat capture for the kernel flood counters; repeatable; - for stdin',
    collect,
  )
  .addOption(
    new Option('--format <format>', 'force the input format instead of detecting it').argParser(
      choiceOption('--format', FORMATS),
    ),
  )
  .option('--strict', 'a malformed line is an error naming the file and line, instead of being skipped and counted')
  .addOption(
    new Option('--by <key>', 'group by remote ip, remote network, or local port')
      .argParser(choiceOption('--by', ['ip', 'net', 'port'] as const))
      .default('ip'),
  )
  .option('--prefix4 <bits>', 'IPv4 network size for --by net', wholeNumberOption('--prefix4', 1, 32), 24)
  .option('--prefix6 <bits>', 'IPv6 network size for --by net', wholeNumberOption('--prefix6', 1, 128), 64)
  .option(
    '-s, --state <states>',
    'only sockets in these states (repeatable or comma list; SYN_RECV, ESTABLISHED, …); one state is also ' +
      'the state of `ss … state X` output, which has no State column',
    collectStates,
  )
  .option('-p, --port <ports>', 'only sockets on these local ports (repeatable or comma list)', collectPorts)
  .addOption(
    new Option('--proto <proto>', 'only tcp or udp sockets')
      .argParser(choiceOption('--proto', ['tcp', 'udp', 'all'] as const))
      .default('all'),
  )
  .option('-n, --top <n>', 'how many groups to show (0 for none)', wholeNumberOption('--top', 0, 1_000_000_000), 20)
  .option(
    '--json',
    'print one JSON object: {"total", "states", "groups": [{"key", "count"}], ' +
      '"source": [{"input", "format", "rows"}] (live: input "live" and its "files"), …}',
  )
  .option(
    '--interval <duration>',
    'live only: sample the kernel flood counters twice, this far apart, and show rates per second',
    durationOption('--interval', BOUNDS.interval),
  )
  .option(
    '--policy <file>',
    'with --input: what-if, list the bans this policy would ' +
      'make at one tick and the top sources it would spare, and why',
  )
  .action(async (options) => (await import('./scan.js')).scanCommand(options));

/** Options every command that touches bans takes. */
function common(command: Command): Command {
  return command
    .option(
      '--state-dir <dir>',
      'where bans are kept (default: /var/lib/floodgate as root, ~/.local/state/floodgate otherwise)',
    )
    .option(
      '--policy <file>',
      'policy file (default: $FLOODGATE_POLICY, else the one `run` used with this state ' +
        'directory, else /etc/floodgate/policy.yaml if it exists, else the embedded default)',
    )
    .option('--enforce', 'change the firewall (needs root); overrides the policy mode')
    .option('--dry-run', 'only show what would change; overrides the policy mode')
    .option('--pretty', 'the same as --log-format pretty')
    .addOption(
      new Option(
        '--log-format <format>',
        'pretty: one readable line per event (default on a terminal); journal: one ' +
          'line per event with a syslog priority (default when stdout is the systemd ' +
          'journal); json: pino JSON lines (default otherwise); also FLOODGATE_LOG_FORMAT',
      ).argParser(choiceOption('--log-format', LOG_FORMATS)),
    )
    .addOption(
      new Option(
        '--log-level <level>',
        'the least important events logged (default: info for run, ' +
          'warn for the other commands; also FLOODGATE_LOG_LEVEL)',
      ).argParser(choiceOption('--log-level', LOG_LEVELS)),
    );
}

common(program.command('run'))
  .description(
    'the controller: every interval, table -> detector -> rate-limited queue ' +
      '-> firewall (dry-run unless --enforce); SIGHUP re-reads the policy file',
  )
  .option('--flush-on-exit', 'remove every floodgate rule on SIGTERM/SIGINT instead of leaving the bans to expire')
  .option(
    '--interval <duration>',
    "override the policy's interval (100ms to 1h)",
    durationOption('--interval', BOUNDS.interval),
  )
  .action(async (options) => (await import('./run.js')).runCommand(options));

common(program.command('ban'))
  .description('ban addresses or networks by hand')
  .argument('[targets...]', 'IPv4/IPv6 addresses or networks (CIDR)')
  .option(
    '--ttl <duration>',
    "how long, 1s to 3650d; a bare number is seconds (default: the policy's ban.ttl, doubled for repeat offenders)",
    durationOption('--ttl', BOUNDS.ttl),
  )
  .option('--reason <text>', 'a note kept with the ban')
  .option('--from-file <file>', 'read targets from a file: one per line, # comments')
  .option(
    '--force',
    'allow networks wider than /16 (IPv4) or /32 (IPv6), allowlisted addresses and your own SSH client address',
  )
  .option(
    '--json',
    'print one JSON object: {"stateDir", "mode", "via", "ttl", "counts": {"banned", "already", "refused"}, ' +
      '"results": [{"target", "status", "expiresAt" or "reason", and "note" for a target with host bits}]}',
  )
  .action(async (targets: string[], options) => (await import('./ban.js')).banCommand(targets, options));

common(program.command('unban'))
  .description('lift bans; the detector leaves the target alone for a grace period')
  .argument('[targets...]', 'addresses or networks to unban')
  .option(
    '--grace <duration>',
    "how long the detector must not ban it again (default: the policy's ban.ttl; 0 for none; at most 3650d)",
    durationOption('--grace', BOUNDS.grace),
  )
  .option('--all', 'lift every ban: the same as flush (no targets, no --grace)')
  .option(
    '--json',
    'print one JSON object: {"stateDir", "mode", "via", "grace", "counts": {"lifted", "notBanned"}, ' +
      '"results": [{"target", "status", and "note" for a target with host bits}]}; with --all, what flush --json prints',
  )
  .action(async (targets: string[], options) => (await import('./unban.js')).unbanCommand(targets, options));

common(program.command('list'))
  .description('show the active bans (dry-run bans are marked)')
  .option('--json', 'print a JSON array of {target, rule, reason, count, createdAt, expiresAt, dryRun}')
  .action(async (options) => (await import('./list.js')).listCommand(options));

common(program.command('flush'))
  .description(
    "remove every rule this state directory's floodgate owns (never another's) and clear its bans; also unban --all",
  )
  .option('--json', 'print one JSON object: {"stateDir", "mode", "via", "cleared"}')
  .action(async (options) => (await import('./flush.js')).flushCommand(options));

common(program.command('status'))
  .description(
    'mode, backend, active and refused bans, the last scan and the kernel flood counters; ' +
      'exits 1 when no daemon runs (the same information is printed), for monitoring checks',
  )
  .option('--json', 'print one JSON object')
  .action(async (options) => (await import('./status.js')).statusCommand(options));

common(program.command('explain'))
  .description(
    'why an address or network is (not) banned: its ban and firewall rule, past bans ' +
      'and unbans, allowlist entry, grace period, and its live counts against each rule',
  )
  .argument('<target>', 'an IPv4/IPv6 address or network (CIDR)')
  .option(
    '--json',
    'print one JSON object: {"banned", "ban", "allowlisted", "grace", ' +
      '"history", "counts": [{"rule", "count", "threshold"}], …}',
  )
  .action(async (target: string, options) => (await import('./explain.js')).explainCommand(target, options));

program
  .command('top')
  .description(
    'a live full-terminal view, redrawn every second: sockets per state, the top ' +
      'sources against each rule, the kernel flood counters as rates, the bans ' +
      "with their time left and the daemon's latest events; changes nothing; q quits",
  )
  .option(
    '--state-dir <dir>',
    'the daemon or bans to show (default: /var/lib/floodgate as root, ~/.local/state/floodgate otherwise)',
  )
  .option(
    '--policy <file>',
    "the rules whose thresholds are shown (default: as for list and status: the running daemon's)",
  )
  .option('--interval <duration>', 'time between frames', durationOption('--interval', BOUNDS.interval), 1000)
  .option('-n, --top <n>', 'sources (or networks) shown per rule', wholeNumberOption('--top', 1, 1000), 5)
  .option('--once', 'print one frame and exit (needed when the output is not a terminal)')
  .action(async (options) => (await import('./top.js')).topCommand(options));

const policy = program.command('policy').description('work with policy files');
policy
  .command('check')
  .description('validate a policy file and print the effective policy with every default filled in')
  .argument(
    '[file]',
    'the policy file (default: the one `run` would use: $FLOODGATE_POLICY, ' +
      '/etc/floodgate/policy.yaml if it exists, the embedded default)',
  )
  .option(
    '--json',
    'print one JSON object, valid or not: {"file", "ok", "errors": [{"file", "line", "key", "message"}], ' +
      '"policy"} (the effective policy, or null); the exit code is the same',
  )
  .option('-q, --quiet', 'print nothing, errors included: exit code 0 if the policy is valid, 2 if not')
  .action(async (file: string | undefined, options) =>
    (await import('./policy-check.js')).policyCheckCommand(file, options),
  );
policy
  .command('init')
  .description('write a commented copy of the default policy (never over an existing file)')
  .argument('[file]', 'where to write it (default: /etc/floodgate/policy.yaml)')
  .action(async (file?: string) => (await import('./policy-init.js')).policyInitCommand(file));

program
  .command('version')
  .description('print the version, as --version does')
  .action(() => {
    process.stdout.write(`${version()}\n`);
  });

/**
 * The command a bare `floodgate` or `floodgate policy` names when it only holds subcommands, or
 * null when the arguments are anything else.
 */
function groupNamed(args: readonly string[]): Command | null {
  let command = program;
  for (const arg of args) {
    const next = command.commands.find((c) => c.name() === arg);
    if (next === undefined) return null;
    command = next;
  }
  return command.commands.length > 0 ? command : null;
}

/**
 * `floodgate list | head`: once the reader has gone the rest of the output is dropped, and the
 * command finishes (its change made) with its own exit code instead of an EPIPE stack trace.
 */
function dropAfterEpipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
}

export async function main(argv: readonly string[] = process.argv): Promise<void> {
  if (!process.stdout.listeners('error').includes(dropAfterEpipe)) process.stdout.on('error', dropAfterEpipe);
  // main.cts answers these before loading this module; the same answer when it is called directly
  // (tests, and `-v`, which commander's one short version flag cannot also take).
  const args = argv.slice(2);
  if (args.length === 1 && VERSION_ARGS.includes(args[0]!)) {
    process.stdout.write(`${version()}\n`);
    return;
  }
  // Asking with no command is asking what there is: the help on stdout with exit code 0, so that
  // `floodgate | less` shows it (commander writes it to stderr as an error).
  const group = groupNamed(args);
  if (group !== null) {
    group.outputHelp();
    return;
  }
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (error instanceof FloodgateError) {
      process.stderr.write(`floodgate: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(
      `floodgate: internal error (a bug; please report it):\n${(error as Error)?.stack ?? String(error)}\n`,
    );
    process.exitCode = 70;
  }
}
