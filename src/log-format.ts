// The three shapes of a log line: pino's JSON (for tools), one line with a syslog priority prefix
// (for journald, so `journalctl -p warning` finds refusals and errors), and one readable line for a
// terminal. The last two are made from pino's JSON line, so every event is logged once, one way.
import { fstatSync } from 'node:fs';
import { UsageError } from './errors.js';

export const LOG_FORMATS = ['pretty', 'journal', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A value from a flag or the environment, checked: `what` names where it came from. */
export function checkChoice<const T extends string>(what: string, choices: readonly T[], value: string): T {
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(`${what}: expected one of ${choices.join(' | ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/**
 * True when `fd` is the stream systemd connected to the journal. JOURNAL_STREAM alone is not
 * enough: a shell in a terminal started by systemd inherits it, so its device:inode must be fd's.
 */
export function isJournalStream(
  env: NodeJS.ProcessEnv,
  fd: number,
  stat: (fd: number) => { dev: bigint; ino: bigint } = (n) => fstatSync(n, { bigint: true }),
): boolean {
  const value = env.JOURNAL_STREAM;
  if (value === undefined || value === '') return false;
  try {
    const { dev, ino } = stat(fd);
    return value === `${dev}:${ino}`;
  } catch {
    return false;
  }
}

export interface FormatChoice {
  /** --log-format, when given. */
  readonly flag?: LogFormat | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** The descriptor the lines go to: 1 for the daemon, 2 for a manual command. */
  readonly fd: number;
  readonly isTTY: boolean;
  /** Instead of "a terminal gets pretty, anything else JSON". */
  readonly fallback?: LogFormat | undefined;
}

/** --log-format, then FLOODGATE_LOG_FORMAT, then the journal, then a terminal (or `fallback`); else JSON. */
export function chooseFormat(choice: FormatChoice): LogFormat {
  if (choice.flag !== undefined) return choice.flag;
  const fromEnv = choice.env.FLOODGATE_LOG_FORMAT;
  if (fromEnv !== undefined && fromEnv !== '') return checkChoice('FLOODGATE_LOG_FORMAT', LOG_FORMATS, fromEnv);
  if (isJournalStream(choice.env, choice.fd)) return 'journal';
  return choice.fallback ?? (choice.isTTY ? 'pretty' : 'json');
}

/** https://no-color.org: present and not empty means no colour. */
export const wantsColor = (env: NodeJS.ProcessEnv, isTTY: boolean): boolean =>
  isTTY && (env.NO_COLOR === undefined || env.NO_COLOR === '');

// pino level -> syslog priority (RFC 5424): error 3, warning 4, info 6, debug 7; fatal is critical.
function priority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

const LABELS: Record<number, string> = { 2: 'FATAL', 3: 'ERROR', 4: 'WARN ', 6: 'INFO ', 7: 'DEBUG' };
const COLORS: Record<number, string> = { 2: '\x1b[35m', 3: '\x1b[31m', 4: '\x1b[33m', 6: '\x1b[32m', 7: '\x1b[90m' };

/** Control characters (a newline in a reason, a terminal escape) shown as text: one line, no tricks. */
function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === '\n'
      ? '\\n'
      : c === '\t'
        ? '\\t'
        : c === '\r'
          ? '\\r'
          : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

const two = (n: number) => String(n).padStart(2, '0');

/** One event's line without its newline: `record` is pino's parsed JSON. */
export function formatRecord(
  record: Record<string, unknown>,
  format: Exclude<LogFormat, 'json'>,
  options: { color?: boolean } = {},
): string {
  const msg = typeof record.msg === 'string' ? record.msg : '';
  let text = msg;
  const err = record.err as { message?: unknown } | undefined;
  if (err && typeof err.message === 'string' && !msg.includes(err.message)) text += `: ${err.message}`;
  if (typeof record.message === 'string' && !msg.includes(record.message)) text += `: ${record.message}`;
  if (record.exitCode !== undefined) {
    const stderr = typeof record.stderr === 'string' && record.stderr !== '' ? `: ${record.stderr}` : '';
    text += ` (exit ${String(record.exitCode)}${stderr})`;
  }
  // The exact command last, so that it can be copied to the end of the line.
  if (typeof record.command === 'string' && !msg.includes(record.command)) text += `; command: ${record.command}`;
  text = escapeControls(text);
  const prio = priority(typeof record.level === 'number' ? record.level : 30);
  // journald stamps the time itself.
  if (format === 'journal') return `<${prio}>${text}`;
  const at = new Date(
    typeof record.time === 'string'
      ? Date.parse(record.time)
      : typeof record.time === 'number'
        ? record.time
        : Date.now(),
  );
  const time =
    `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.` +
    `${String(at.getMilliseconds()).padStart(3, '0')}`;
  const label = LABELS[prio]!;
  return options.color ? `\x1b[2m${time}\x1b[0m ${COLORS[prio]}${label}\x1b[0m ${text}` : `${time} ${label} ${text}`;
}

/** Where formatted lines go: a LogDestination or any writable stream. */
export interface LineSink {
  write(chunk: string): unknown;
  flush?(callback?: (error?: Error) => void): void;
  flushSync?(): void;
}

/** A pino destination that turns each JSON line into a journal or terminal line. */
export class FormattingDestination {
  constructor(
    private readonly sink: LineSink,
    private readonly format: Exclude<LogFormat, 'json'>,
    private readonly color: boolean,
  ) {}

  write(line: string): boolean {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      record = { level: 30, msg: line.trimEnd() };
    }
    this.sink.write(`${formatRecord(record, this.format, { color: this.color })}\n`);
    return true;
  }

  flush(callback?: (error?: Error) => void): void {
    if (this.sink.flush) this.sink.flush(callback);
    else callback?.();
  }

  flushSync(): void {
    this.sink.flushSync?.();
  }
}
