// The one way floodgate runs external commands: argv arrays only (never a shell), a timeout, debug
// logging of the argv, retries with backoff for transient failures, and typed errors.
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { BackendUnavailableError, CommandFailedError } from '../errors.js';
import { shellCommand } from './shell-quote.js';

export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to the command's standard input. */
  readonly input?: string;
  /** @default 30_000 */
  readonly timeoutMs?: number;
  /** When false, a non-zero exit is returned instead of thrown (probes). @default true */
  readonly reject?: boolean;
  /** Extra attempts for transient failures (lock held, exit code 4). @default 0 */
  readonly retries?: number;
  /** Variables added to floodgate's own environment for this command. @default none */
  readonly env?: Readonly<Record<string, string>>;
}

export interface CommandRunner {
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** Which Debian package brings each tool, for "missing tool" messages. */
const PACKAGES: Record<string, string> = {
  iptables: 'iptables',
  'iptables-restore': 'iptables',
  ip6tables: 'iptables',
  'ip6tables-restore': 'iptables',
  ipset: 'ipset',
  nft: 'nftables',
  ss: 'iproute2',
};

export function installHint(tool: string): string {
  return `install it with: apt-get install ${PACKAGES[tool] ?? tool}`;
}

/** Exit code 4 is xtables' "resource problem", which includes another process holding its lock. */
export function isTransient(result: CommandResult): boolean {
  return result.exitCode === 4 || /xtables lock|temporarily unavailable|Resource busy/i.test(result.stderr);
}

export type DebugLog = (event: { argv: readonly string[]; exitCode?: number; ms: number }) => void;

export class ExecaRunner implements CommandRunner {
  constructor(
    private readonly debug: DebugLog = () => {},
    private readonly backoffMs = 100,
  ) {}

  async run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const retries = options.retries ?? 0;
    for (let attempt = 0; ; attempt++) {
      const result = await this.once(argv, options);
      if (result.exitCode === 0 || options.reject === false) return result;
      if (attempt < retries && isTransient(result)) {
        await sleep(this.backoffMs * 2 ** attempt);
        continue;
      }
      throw new CommandFailedError(
        `${shellCommand(argv)} failed with exit code ` +
          `${result.exitCode}${attempt > 0 ? ` after ${attempt + 1} attempts` : ''}: ` +
          `${result.stderr.trim() || '(no message)'}`,
        argv,
        result.exitCode,
        result.stderr,
      );
    }
  }

  private async once(argv: readonly string[], options: RunOptions): Promise<CommandResult> {
    const started = performance.now();
    const [file, ...args] = argv;
    const result = await execa(file!, args, {
      reject: false,
      timeout: options.timeoutMs ?? 30_000,
      stripFinalNewline: false,
      ...(options.env !== undefined && { env: options.env }),
      ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' }),
    });
    this.debug({ argv, exitCode: result.exitCode, ms: Math.round(performance.now() - started) });
    if ((result as { code?: string }).code === 'ENOENT') {
      throw new BackendUnavailableError(`${file} not found: ${installHint(file!)}`, { cause: result });
    }
    if (result.timedOut) {
      throw new CommandFailedError(
        `${shellCommand(argv)} timed out after ${options.timeoutMs ?? 30_000} ms`,
        argv,
        undefined,
        String(result.stderr ?? ''),
        { cause: result },
      );
    }
    return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
  }
}
