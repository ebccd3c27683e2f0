// The optional web-service reload after bans: an argv (no shell), at most once per debounce, with a
// timeout. A failure is logged and never stops floodgate. Its event is reload-hook: `reload` is SIGHUP's.
import type { Logger } from '../log.js';
import type { CommandRunner } from '../system/command-runner.js';
import { shellCommand } from '../system/shell-quote.js';

export interface ReloadOptions {
  readonly command: readonly string[];
  readonly debounce: number;
  readonly timeout: number;
}

export class ReloadHook {
  private lastRun = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly options: ReloadOptions,
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    private readonly dryRun: boolean,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Asks for a reload: now if the last one is older than the debounce, else once at its end. */
  trigger(): void {
    if (this.timer !== undefined) return;
    const wait = this.lastRun + this.options.debounce - this.clock();
    if (wait <= 0) {
      void this.run();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, wait);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.running) {
      // Bans committed during a slow reload get a reload of their own, after the debounce.
      this.again = true;
      return this.running;
    }
    this.lastRun = this.clock();
    const argv = this.options.command;
    const command = shellCommand(argv);
    if (this.dryRun) {
      this.log.info({ event: 'reload-hook', dryRun: true, command }, `dry-run: would run reload hook: ${command}`);
      return;
    }
    this.running = (async () => {
      try {
        const result = await this.runner.run(argv, { reject: false, timeoutMs: this.options.timeout });
        if (result.exitCode === 0) this.log.info({ event: 'reload-hook', command }, 'reload hook ran');
        else
          this.log.error(
            { event: 'error', during: 'reload-hook', command, exitCode: result.exitCode, stderr: result.stderr.trim() },
            'reload hook failed',
          );
      } catch (error) {
        this.log.error({ event: 'error', during: 'reload-hook', command, err: error }, 'reload hook failed');
      } finally {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.trigger();
        }
      }
    })();
    return this.running;
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
