// `floodgate top`: a live full-terminal view, redrawn every second: sockets per state, each rule's
// largest sources against its threshold, the kernel flood counters as rates, the bans with their
// time left and the daemon's latest events. Reads only: the table from /proc, the daemon through
// its control socket (status, list, events), or, with no daemon, the saved bans.
import { join } from 'node:path';
import { sendControl } from '../daemon/control-socket.js';
import {
  CONTROL_SOCKET,
  type ListedBan,
  type RecentEvent,
  type Request,
  type StatusResult,
} from '../daemon/protocol.js';
import { defaultStateDir } from '../daemon/state-dir.js';
import { ruleFilter } from '../detect/detector.js';
import { UsageError } from '../errors.js';
import type { Policy } from '../policy/schema.js';
import { countSockets, topGroups } from '../table/count-sockets.js';
import { type FloodCounters, counterRates } from '../table/kernel-counters.js';
import { defaultProcRoot, readKernelCounters, readLiveTable } from '../table/live-table.js';
import { SocketTable } from '../table/socket-table.js';
import { loadCommandPolicy, readBans } from './act.js';
import { describePolicy } from './policy-lookup.js';
import { type RuleGroup, type ScreenSize, type TopFrame, renderTop } from './top-screen.js';

export interface TopOptions {
  readonly stateDir?: string;
  readonly policy?: string;
  /** Time between frames. @default 1000 */
  readonly interval: number;
  /** Sources (or networks) shown per rule. @default 5 */
  readonly top: number;
  /** Print one frame and exit, terminal or not. */
  readonly once?: boolean;
}

/** The width of a frame printed once to something that is not a terminal. */
const PIPE_COLUMNS = 120;

/** Each rule's largest groups as that rule counts them (its states, ports, proto, per ip or net). */
export function ruleGroups(table: SocketTable, policy: Policy, top: number): RuleGroup[] {
  return policy.rules.flatMap((rule) => {
    const grouping =
      rule.per === 'net' ? { by: 'net' as const, prefix4: rule.prefix4, prefix6: rule.prefix6 } : { by: 'ip' as const };
    const { groups } = countSockets(table, ruleFilter(rule), grouping);
    return topGroups(groups, top).map((g) => ({
      target: g.key,
      rule: rule.name,
      per: rule.per,
      count: g.count,
      threshold: rule.threshold,
    }));
  });
}

interface DaemonView {
  readonly status: StatusResult | null;
  readonly bans: ListedBan[] | null;
  readonly events: RecentEvent[] | null;
  readonly problem?: string;
}

/** Over this many bans, the list is asked for every LIST_EVERY_MS only: 100k bans are 15 MB of JSON. */
const BIG_LIST = 2000;
const LIST_EVERY_MS = 10_000;

/** Asks the daemon for its status, bans and events; a big ban list is asked for less often. */
function daemonReader(socket: string): () => Promise<DaemonView> {
  let listed: { at: number; bans: ListedBan[] } | undefined;
  const ask = async (request: Request): Promise<unknown> => {
    const response = await sendControl(socket, request);
    if (response === null) return null;
    if (!response.ok) throw new UsageError(response.error);
    return response.result;
  };
  return async () => {
    try {
      // A daemon older than the events request refuses it: its status and bans are still shown.
      const [status, events] = (await Promise.all([
        ask({ cmd: 'status' }),
        ask({ cmd: 'events' }).catch(() => null),
      ])) as [StatusResult | null, RecentEvent[] | null];
      if (status === null) {
        listed = undefined;
        return { status: null, bans: null, events: null };
      }
      const now = Date.now();
      if (listed === undefined || status.active <= BIG_LIST || now - listed.at >= LIST_EVERY_MS) {
        const bans = (await ask({ cmd: 'list' })) as ListedBan[] | null;
        listed = { at: now, bans: bans ?? [] };
      }
      return { status, bans: listed.bans, events };
    } catch (error) {
      // A permission problem, or a daemon that stopped between two requests: shown, and asked again next time.
      return { status: null, bans: null, events: null, problem: (error as Error).message };
    }
  };
}

/** Whether to colour: a terminal, and no NO_COLOR (https://no-color.org: set and not empty). */
export function useColor(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  return isTTY && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb';
}

export async function topCommand(options: TopOptions): Promise<void> {
  const out = process.stdout;
  if (!out.isTTY && !options.once) {
    throw new UsageError(
      'floodgate top draws a live screen and needs a terminal, but its output is not ' +
        'one; use --once to print a single frame (or floodgate status / scan for scripts)',
    );
  }
  const stateDir = options.stateDir ?? defaultStateDir();
  const socket = join(stateDir, CONTROL_SOCKET);
  const { policy, file, source } = await loadCommandPolicy(options, stateDir);
  const policyText = describePolicy(file, source);
  const askDaemon = daemonReader(socket);
  const table = new SocketTable();
  let previous: { at: number; counters: FloodCounters } | undefined;

  const sample = async (): Promise<TopFrame> => {
    const [daemon, , counters] = await Promise.all([
      askDaemon(),
      readLiveTable('all', undefined, table),
      readKernelCounters(),
    ]);
    const now = Date.now();
    const rates = previous && counterRates(previous.counters, counters, (now - previous.at) / 1000);
    previous = { at: now, counters };
    const counts = countSockets(table, {}, { by: 'ip' });
    let problem = daemon.problem;
    let bans = daemon.bans;
    if (bans === null) {
      try {
        bans = await readBans(stateDir, policy.ban.ttl, policy.ban.max_ttl);
      } catch (error) {
        // Root's state directory read by a plain user: the table is still worth showing.
        bans = [];
        problem = `${problem ? `${problem}; ` : ''}cannot read the saved bans: ${(error as Error).message}`;
      }
    }
    return {
      now,
      source: `${defaultProcRoot()}/net`,
      interval: options.interval,
      total: counts.total,
      states: counts.states,
      groups: ruleGroups(table, policy, options.top),
      counters,
      ...(rates && { rates }),
      daemon: daemon.status,
      ...(problem !== undefined && { daemonProblem: problem }),
      bans: bans.filter((b) => Date.parse(b.expiresAt) > now),
      events: daemon.events,
      policy: policyText,
    };
  };

  if (options.once) {
    const size: ScreenSize = out.isTTY
      ? { columns: out.columns, rows: out.rows }
      : { columns: PIPE_COLUMNS, rows: Infinity };
    out.write(`${renderTop(await sample(), size, useColor(out.isTTY === true)).join('\n')}\n`);
    return;
  }
  await live(options, sample);
}

/** The terminal as it was, put back whatever ends the view: q, Ctrl-C, SIGTERM, an error. */
async function live(options: TopOptions, sample: () => Promise<TopFrame>): Promise<void> {
  const out = process.stdout;
  const input = process.stdin;
  const color = useColor(true);
  let frame: TopFrame | undefined;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  let failure: unknown;

  const draw = () => {
    if (frame === undefined) return;
    const lines = renderTop(frame, { columns: out.columns, rows: out.rows }, color);
    // Home, each line cleared to its end, the rest of the screen cleared: no flicker of a full clear.
    out.write(`\x1b[H${lines.map((line) => `${line}\x1b[K`).join('\r\n')}\x1b[J`);
  };
  const onKey = (key: Buffer) => {
    // q, Q, Ctrl-C (raw mode delivers it as a byte, not a signal), Ctrl-D.
    if (key.includes(0x71) || key.includes(0x51) || key.includes(0x03) || key.includes(0x04)) done();
  };
  const onSignal = () => done();
  const restore = () => {
    out.write('\x1b[0m\x1b[?25h\x1b[?1049l');
    if (input.isTTY) input.setRawMode(false);
  };
  // Last resort for an exit nobody saw coming.
  process.on('exit', restore);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  out.on('resize', draw);
  // Alternate screen, cursor hidden.
  out.write('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J');
  if (input.isTTY) {
    input.setRawMode(true);
    input.resume();
    input.on('data', onKey);
  }
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      frame = await sample();
      // A frame that was being read when the view ended is not drawn over the restored terminal.
      if (stopped) return;
      draw();
      timer = setTimeout(() => void tick(), options.interval);
    } catch (error) {
      failure = error;
      done();
    }
  };
  try {
    void tick();
    await finished;
  } finally {
    stopped = true;
    clearTimeout(timer);
    out.off('resize', draw);
    input.off('data', onKey);
    input.pause();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    restore();
    process.off('exit', restore);
  }
  if (failure !== undefined) throw failure;
}
