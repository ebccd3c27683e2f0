// A CommandRunner that runs nothing: it records every argv and input and answers from a script, so a
// test can assert the exact command lines a backend or hook produces (fail2ban's servertestcase swaps
// executeCmd for a recorder the same way).
import { CommandFailedError } from '../../src/errors.js';
import type { CommandResult, CommandRunner, RunOptions } from '../../src/system/command-runner.js';

export interface RecordedCall {
  readonly argv: readonly string[];
  readonly input: string | undefined;
  readonly options: RunOptions;
}

/** What a scripted command does: a result (missing fields are 0 / ''), or an error it throws. */
export type Reply = Partial<CommandResult> | { readonly throws: Error };

/** A fixed reply, or one computed from the call (for a stateful fake of a tool). */
export type Script = Reply | ((call: RecordedCall) => Reply);

interface Rule {
  readonly prefix: readonly string[];
  readonly script: Script;
  /** Replies left; Infinity for a rule that always answers. */
  remaining: number;
}

export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  private readonly rules: Rule[] = [];

  /** Answers every command whose argv starts with `prefix`; a later rule wins over an earlier one. */
  on(prefix: readonly string[], script: Script): this {
    this.rules.unshift({ prefix, script, remaining: Infinity });
    return this;
  }

  /** Answers only the next matching command, then steps aside for the rules below it. */
  once(prefix: readonly string[], script: Script): this {
    this.rules.unshift({ prefix, script, remaining: 1 });
    return this;
  }

  /** The recorded argvs, each joined with spaces: easy to compare with a command line. */
  get commands(): string[] {
    return this.calls.map((call) => call.argv.join(' '));
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const call: RecordedCall = { argv: [...argv], input: options.input, options };
    this.calls.push(call);
    const rule = this.rules.find((r) => r.remaining > 0 && r.prefix.every((word, i) => argv[i] === word));
    if (rule !== undefined) rule.remaining--;
    const script = rule?.script ?? {};
    const reply = typeof script === 'function' ? script(call) : script;
    if ('throws' in reply) throw reply.throws;
    const result: CommandResult = {
      exitCode: reply.exitCode ?? 0,
      stdout: reply.stdout ?? '',
      stderr: reply.stderr ?? '',
    };
    // The same contract as ExecaRunner: a non-zero exit throws unless the caller probes with reject: false.
    if (result.exitCode !== 0 && options.reject !== false) {
      throw new CommandFailedError(
        `${argv.join(' ')} failed with exit code ${result.exitCode}: ${result.stderr.trim() || '(no message)'}`,
        argv,
        result.exitCode,
        result.stderr,
      );
    }
    return result;
  }
}
