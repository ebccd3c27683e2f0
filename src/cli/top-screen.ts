// What `floodgate top` draws: one frame of plain data in, the screen's lines out, cut to the
// terminal's width and height. Pure: no clock, no terminal, no socket; colour only when asked.
import type { ListedBan, RecentEvent, StatusResult } from '../daemon/protocol.js';
import { FLOOD_COUNTERS, type FloodCounters } from '../table/kernel-counters.js';
import { STATES, type SocketState } from '../table/socket-row.js';
import { printable } from './list.js';

/** One source or network a rule counts, against that rule's threshold. */
export interface RuleGroup {
  readonly target: string;
  readonly rule: string;
  readonly per: 'ip' | 'net';
  readonly count: number;
  /** A ban is made when the count is greater than this. */
  readonly threshold: number;
}

export interface TopFrame {
  readonly now: number;
  /** Where the table was read: "/proc/net (network namespace of pid 1234)". */
  readonly source: string;
  readonly interval: number;
  readonly total: number;
  readonly states: Partial<Record<SocketState, number>>;
  /** Each rule's largest groups, as the rule counts them. */
  readonly groups: readonly RuleGroup[];
  readonly counters: FloodCounters;
  /** Per second since the previous frame; absent on the first. */
  readonly rates?: FloodCounters;
  /** null when no daemon answers on the state directory's socket. */
  readonly daemon: StatusResult | null;
  /** Why the daemon could not be asked (a permission problem), when that is the case. */
  readonly daemonProblem?: string;
  readonly bans: readonly ListedBan[];
  /** The daemon's latest events, oldest first; null without a daemon. */
  readonly events: readonly RecentEvent[] | null;
  readonly policy: string;
}

export interface ScreenSize {
  readonly columns: number;
  /** The lines available; Infinity for a frame printed once, whole. */
  readonly rows: number;
}

type Style = 'title' | 'over' | 'near' | 'banned' | 'warn' | 'dim';

interface Line {
  readonly text: string;
  readonly style?: Style;
}

const SGR: Readonly<Record<Style, string>> = {
  title: '\x1b[1;7m',
  over: '\x1b[1;31m',
  near: '\x1b[33m',
  banned: '\x1b[32m',
  warn: '\x1b[1;31m',
  dim: '\x1b[2m',
};

/** "9m 58s", "1h 02m", "3d 4h": the largest two units. */
export function timeLeft(ms: number): string {
  if (ms <= 0) return 'expiring';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor(s / 3600) % 24}h`;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

function rate(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** Words joined by `separator`, wrapped into lines no wider than `width`. */
function wrap(words: readonly string[], width: number, separator = '  '): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line !== '' && line.length + separator.length + word.length > width) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? word : `${line}${separator}${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** How many of each section's lines fit in `room`: each gets a fair share, what one leaves goes to the others. */
function share(wants: readonly number[], room: number): number[] {
  const got = wants.map(() => 0);
  let left = Math.max(0, room);
  while (left > 0) {
    const hungry = wants.map((w, i) => (got[i]! < w ? i : -1)).filter((i) => i >= 0);
    if (hungry.length === 0) break;
    const each = Math.max(1, Math.floor(left / hungry.length));
    for (const i of hungry) {
      const give = Math.min(each, wants[i]! - got[i]!, left);
      got[i]! += give;
      left -= give;
      if (left === 0) break;
    }
  }
  return got;
}

function header(frame: TopFrame, columns: number): Line[] {
  const lines: Line[] = [
    { text: `floodgate top  ${clock(frame.now)} UTC  every ${frame.interval / 1000}s  q quits`, style: 'title' },
  ];
  const d = frame.daemon;
  if (d?.daemon) {
    const parts = [
      `daemon: pid ${d.daemon.pid}, ${d.mode} with ${d.backend}, every ${d.interval};`,
      `bans: ${d.active} active, ${d.queued} queued, ${d.refused} refused;`,
      `last scan: ${d.lastScan ? `${d.lastScan.sockets} sockets in ${d.lastScan.durationMs} ms` : 'not yet'}`,
    ];
    lines.push(...wrap(parts, columns).map((text) => ({ text })));
  } else {
    if (frame.daemonProblem)
      lines.push(
        ...wrap(`daemon: ${printable(frame.daemonProblem)}`.split(' '), columns, ' ').map((text) => ({
          text,
          style: 'warn' as const,
        })),
      );
    else lines.push({ text: 'daemon: not running (the table and the saved bans only)', style: 'dim' });
  }
  lines.push({ text: `policy: ${frame.policy}`, style: 'dim' });
  const states = STATES.filter((s) => frame.states[s] !== undefined).map((s) => `${s} ${frame.states[s]}`);
  const [first, ...rest] = wrap([`sockets: ${frame.total} in ${frame.source}`, ...states], columns);
  lines.push({ text: first ?? '' }, ...rest.map((text) => ({ text })));
  return lines;
}

function groupLines(frame: TopFrame): { title: Line; rows: Line[] } {
  const banned = new Set(frame.bans.map((b) => b.target));
  const width = Math.max(18, ...frame.groups.map((g) => g.target.length));
  const title = {
    text: `${'TOP SOURCES'.padEnd(width)}  ${'COUNT'.padStart(6)}  THRESHOLD  ${'RULE'.padEnd(20)}  `,
    style: 'title' as const,
  };
  // Nearest to their rule's threshold first: the ones about to be banned.
  const sorted = [...frame.groups].sort((a, b) => b.count / b.threshold - a.count / a.threshold || b.count - a.count);
  const rows = sorted.map((g): Line => {
    const isBanned = banned.has(g.target);
    const over = g.count > g.threshold;
    const note = isBanned ? 'banned' : over ? 'OVER' : g.count * 2 > g.threshold ? 'near' : '';
    const text =
      `${printable(g.target).padEnd(width)}  ${String(g.count).padStart(6)}  ` +
      `${`> ${g.threshold}`.padEnd(9)}  ${printable(g.rule).padEnd(20)}  ${note}`;
    return {
      text,
      ...(isBanned
        ? { style: 'banned' as const }
        : over
          ? { style: 'over' as const }
          : note === 'near'
            ? { style: 'near' as const }
            : {}),
    };
  });
  if (rows.length === 0) rows.push({ text: '(no connected sockets any rule counts)', style: 'dim' });
  return { title, rows };
}

function counterLines(frame: TopFrame, columns: number): { title: Line; rows: Line[] } {
  const title = {
    text: frame.rates
      ? 'KERNEL FLOOD COUNTERS  per second (since boot)'
      : 'KERNEL FLOOD COUNTERS  since boot (rates from the next refresh)',
    style: 'title' as const,
  };
  const words = FLOOD_COUNTERS.map((name) =>
    frame.rates ? `${name} ${rate(frame.rates[name])}/s (${frame.counters[name]})` : `${name} ${frame.counters[name]}`,
  );
  const hot = frame.rates !== undefined && FLOOD_COUNTERS.some((name) => frame.rates![name] > 0);
  return { title, rows: wrap(words, columns).map((text) => ({ text, ...(hot && { style: 'warn' as const }) })) };
}

function banLines(frame: TopFrame): { title: Line; rows: Line[] } {
  const width = Math.max(18, ...frame.bans.map((b) => b.target.length));
  const title = {
    text:
      `${`BANS (${frame.daemon?.active ?? frame.bans.length})`.padEnd(width)}  ` +
      `${'RULE'.padEnd(20)}  ${'COUNT'.padStart(6)}  ${'TIME LEFT'.padEnd(9)}  MODE`,
    style: 'title' as const,
  };
  // Newest first: what was just banned is what one is watching for.
  const sorted = [...frame.bans].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const rows = sorted.map(
    (b): Line => ({
      text:
        `${printable(b.target).padEnd(width)}  ${printable(b.rule).padEnd(20)}  ` +
        `${String(b.count).padStart(6)}  ${timeLeft(Date.parse(b.expiresAt) - frame.now).padEnd(9)}  ` +
        `${b.dryRun ? 'dry-run' : 'enforced'}`,
    }),
  );
  if (rows.length === 0) rows.push({ text: '(none)', style: 'dim' });
  return { title, rows };
}

function eventLines(frame: TopFrame): { title: Line; rows: Line[] } {
  const title = { text: 'LATEST EVENTS', style: 'title' as const };
  if (frame.events === null) {
    const why =
      frame.daemon === null
        ? '(kept by a running floodgate run; none is running)'
        : '(this floodgate run does not answer the events request: an older version?)';
    return { title, rows: [{ text: why, style: 'dim' }] };
  }
  // Newest first.
  const rows = [...frame.events].reverse().map(
    (e): Line => ({
      text: `${clock(Date.parse(e.at))}  ${e.level.padEnd(5)}  ${printable(e.msg || e.event)}`,
      ...(e.level === 'error' || e.level === 'warn' ? { style: 'warn' as const } : {}),
    }),
  );
  if (rows.length === 0) rows.push({ text: '(none yet)', style: 'dim' });
  return { title, rows };
}

/** The frame as lines of at most `size.columns` characters, at most `size.rows` of them. */
export function renderTop(frame: TopFrame, size: ScreenSize, color: boolean): string[] {
  const columns = Math.max(20, size.columns);
  const top = header(frame, columns);
  const counters = counterLines(frame, columns);
  const sections = [groupLines(frame), banLines(frame), eventLines(frame)];
  // Header, the counters, and each section's title with a blank line before it, always; the rows share the rest.
  const fixed = top.length + 2 + counters.rows.length + sections.length * 2;
  const room = size.rows === Infinity ? Infinity : size.rows - fixed;
  const counts =
    room === Infinity
      ? sections.map((s) => s.rows.length)
      : share(
          sections.map((s) => s.rows.length),
          room,
        );
  const lines: Line[] = [...top];
  const [sources, bans, events] = sections as [
    ReturnType<typeof groupLines>,
    ReturnType<typeof banLines>,
    ReturnType<typeof eventLines>,
  ];
  const add = (section: { title: Line; rows: Line[] }, count: number) => {
    lines.push({ text: '' }, section.title);
    const shown = section.rows.slice(0, count);
    // A cut list says so on its last line, rather than passing for the whole.
    if (count < section.rows.length && count > 0)
      shown[count - 1] = { text: `… ${section.rows.length - count + 1} more`, style: 'dim' };
    lines.push(...shown);
  };
  add(sources, counts[0]!);
  lines.push({ text: '' }, counters.title, ...counters.rows);
  add(bans, counts[1]!);
  add(events, counts[2]!);
  const out = (size.rows === Infinity ? lines : lines.slice(0, Math.max(1, size.rows))).map((line) => {
    const text = line.text.length > columns ? line.text.slice(0, columns) : line.text;
    if (!color || line.style === undefined) return text;
    // A title bar spans the whole width.
    const padded = line.style === 'title' ? text.padEnd(columns) : text;
    return `${SGR[line.style]}${padded}\x1b[0m`;
  });
  return out;
}
