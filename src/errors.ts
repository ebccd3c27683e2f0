// The few typed errors floodgate raises on purpose; the CLI maps them to exit codes in one place.
// Anything else that escapes is a bug and is shown as one.

export abstract class FloodgateError extends Error {
  abstract readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A user mistake in a flag, a target or an input file. */
export class UsageError extends FloodgateError {
  readonly exitCode = 2;
}

/** One mistake in a policy file, as `policy check --json` lists it. */
export interface PolicyProblem {
  readonly file: string;
  /** null when the file could not be read at all. */
  readonly line: number | null;
  /** "rules[0].threshold", "(top level)"; null for YAML syntax and an unreadable file. */
  readonly key: string | null;
  readonly message: string;
}

/** A policy file that is not valid; the message names the file, the line and the key. */
export class ConfigError extends FloodgateError {
  readonly exitCode = 2;
  /** The policy file's mistakes one by one, when that is what is wrong (the message has them as lines). */
  readonly problems: readonly PolicyProblem[] | undefined;
  constructor(message: string, options?: { cause?: unknown; problems?: readonly PolicyProblem[] }) {
    super(message, options);
    this.problems = options?.problems;
  }
}

/** A tool, a permission or a resource that enforcement needs is not there. */
export class BackendUnavailableError extends FloodgateError {
  readonly exitCode = 3;
}

/** An external command failed; `cause` keeps execa's error with its exit code and stderr. */
export class CommandFailedError extends FloodgateError {
  readonly exitCode = 4;
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly commandExitCode: number | undefined,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Another floodgate holds the state directory's lock, or the daemon refused a request. */
export class ConflictError extends FloodgateError {
  readonly exitCode = 5;
}

/**
 * Input as an error message quotes it: JSON-escaped (no terminal escapes) and cut to about 80
 * characters, so that a 1 MB line is not a 1 MB message.
 */
export function quoteInput(text: string, max = 80): string {
  return text.length <= max
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, max))}… (${text.length} characters)`;
}
