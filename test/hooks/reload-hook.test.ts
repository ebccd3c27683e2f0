// The reload hook: an argv run without a shell, at most once per debounce, failures and timeouts
// logged and never thrown, and only a log line in dry-run.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CommandFailedError } from '../../src/errors.js';
import { ReloadHook, type ReloadOptions } from '../../src/hooks/reload-hook.js';
import { type CommandResult, type CommandRunner, ExecaRunner } from '../../src/system/command-runner.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const OPTIONS: ReloadOptions = { command: ['systemctl', 'reload', 'nginx'], debounce: 10_000, timeout: 5_000 };

function setup(options: Partial<ReloadOptions> = {}, dryRun = false, runner: CommandRunner = new RecordingRunner()) {
  const memory = memoryLog();
  // The injected clock reads the fake system time, so it moves with the fake timers.
  const hook = new ReloadHook({ ...OPTIONS, ...options }, runner, memory.log, dryRun, () => Date.now());
  return { hook, runner, ...memory };
}

describe('ReloadHook', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs the argv as given, without a shell, with its timeout', async () => {
    const runner = new RecordingRunner();
    const { hook, named } = setup({ command: ['/usr/local/bin/reload web', '--graceful', '$(id)'] }, false, runner);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(0);
    expect(runner.calls.map((c) => c.argv)).toEqual([['/usr/local/bin/reload web', '--graceful', '$(id)']]);
    expect(runner.calls[0]!.options).toEqual({ reject: false, timeoutMs: 5_000 });
    expect(named('reload-hook')).toEqual([
      expect.objectContaining({ command: "'/usr/local/bin/reload web' --graceful '$(id)'", level: 30 }),
    ]);
  });

  it('runs at most once per debounce, and once more at its end for triggers in between', async () => {
    const runner = new RecordingRunner();
    const { hook } = setup({}, false, runner);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(1_000);
    hook.trigger();
    hook.trigger();
    await vi.advanceTimersByTimeAsync(4_000);
    hook.trigger();
    expect(runner.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(4_999); // T0 + 9.999 s
    expect(runner.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1); // T0 + 10 s
    expect(runner.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runner.calls).toHaveLength(2);
  });

  it('runs at once when the last reload is older than the debounce', async () => {
    const runner = new RecordingRunner();
    const { hook } = setup({}, false, runner);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(10_000);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(0);
    expect(runner.calls).toHaveLength(2);
  });

  it('logs a failing command as an error and does not throw', async () => {
    const runner = new RecordingRunner().on(['systemctl'], { exitCode: 1, stderr: 'Job for nginx.service failed.\n' });
    const { hook, named } = setup({}, false, runner);
    expect(() => hook.trigger()).not.toThrow();
    await vi.advanceTimersByTimeAsync(0);
    expect(named('error')).toEqual([
      expect.objectContaining({
        during: 'reload-hook',
        command: 'systemctl reload nginx',
        exitCode: 1,
        stderr: 'Job for nginx.service failed.',
        level: 50,
      }),
    ]);
    expect(named('reload-hook')).toEqual([]);
  });

  it('logs a command that times out, and still reloads next time', async () => {
    const runner = new RecordingRunner().once(['systemctl'], {
      throws: new CommandFailedError('systemctl reload nginx timed out after 5000 ms', OPTIONS.command, undefined, ''),
    });
    const { hook, named } = setup({}, false, runner);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(0);
    expect(named('error')).toEqual([
      expect.objectContaining({
        during: 'reload-hook',
        err: expect.objectContaining({ message: 'systemctl reload nginx timed out after 5000 ms' }),
      }),
    ]);
    await vi.advanceTimersByTimeAsync(10_000);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(0);
    expect(runner.calls).toHaveLength(2);
    expect(named('reload-hook')).toHaveLength(1);
  });

  it('never runs two reloads at once', async () => {
    let finish: (result: CommandResult) => void = () => {};
    const calls: (readonly string[])[] = [];
    const slow: CommandRunner = {
      run: (argv) => {
        calls.push(argv);
        return new Promise((resolve) => (finish = resolve));
      },
    };
    const { hook } = setup({}, false, slow);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(20_000);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    finish({ exitCode: 0, stdout: '', stderr: '' });
    await vi.advanceTimersByTimeAsync(0);
  });

  it('in dry-run only logs the command it would run, once per debounce', async () => {
    const runner = new RecordingRunner();
    const { hook, named } = setup({}, true, runner);
    hook.trigger();
    hook.trigger();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runner.calls).toEqual([]);
    expect(named('reload-hook')).toEqual([
      expect.objectContaining({
        dryRun: true,
        command: 'systemctl reload nginx',
        msg: 'dry-run: would run reload hook: systemctl reload nginx',
      }),
      expect.objectContaining({ dryRun: true }),
    ]);
  });

  it('stop() cancels a reload waiting for the end of the debounce', async () => {
    const runner = new RecordingRunner();
    const { hook } = setup({}, false, runner);
    hook.trigger();
    await vi.advanceTimersByTimeAsync(1_000);
    hook.trigger();
    hook.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runner.calls).toHaveLength(1);
  });
});

describe('ReloadHook with a real command (harmless: sleep)', () => {
  it('logs a timeout from the runner instead of throwing', async () => {
    const { hook, named } = setup({ command: ['sleep', '5'], timeout: 100 }, false, new ExecaRunner());
    hook.trigger();
    await vi.waitFor(() => expect(named('error')).toHaveLength(1), { timeout: 5_000 });
    expect(named('error')[0]).toMatchObject({
      during: 'reload-hook',
      command: 'sleep 5',
      err: { message: expect.stringMatching(/^sleep 5 timed out after 100 ms/) },
    });
  });
});
