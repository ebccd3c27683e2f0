// `floodgate ban TARGET… [--ttl] [--reason] [--from-file]`: manual bans, validated before anything runs.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { type BanResult, reasonProblem } from '../daemon/protocol.js';
import { type Cidr, cidrContains, formatCidr, parseCidr } from '../net/ip.js';
import { parseTarget, parseTargetList } from '../net/target.js';
import { type CommonOptions, act } from './act.js';

export interface BanOptions extends CommonOptions {
  readonly ttl?: number;
  readonly reason?: string;
  readonly fromFile?: string;
  readonly force?: boolean;
}

/** The address of the SSH session this command runs in: banning it would lock the operator out. */
export function sshClientAddress(env: NodeJS.ProcessEnv = process.env): Cidr | null {
  const first = (env.SSH_CLIENT ?? env.SSH_CONNECTION ?? '').trim().split(/\s+/)[0];
  return first ? parseCidr(first) : null;
}

export async function banCommand(targetTexts: string[], options: BanOptions): Promise<void> {
  const reasonTooLong = options.reason === undefined ? null : reasonProblem(options.reason);
  if (reasonTooLong !== null) throw new UsageError(reasonTooLong);
  const targets = targetTexts.map((text) => parseTarget(text, options.force));
  if (options.fromFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.fromFile, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read --from-file ${options.fromFile}: ${(error as Error).message}`);
    }
    // A loop, not push(...list): spreading 125k+ arguments overflows V8's stack.
    for (const target of parseTargetList(text, options.fromFile, options.force)) targets.push(target);
  }
  if (targets.length === 0) throw new UsageError('nothing to ban: give one or more targets, or --from-file FILE');
  const ssh = sshClientAddress();
  if (ssh !== null && !options.force) {
    const covering = targets.find((target) => cidrContains(target, ssh));
    if (covering) throw new UsageError(`refusing to ban ${formatCidr(covering)}: it covers ${formatCidr(ssh)}, the address of your SSH session (--force to ban it anyway)`);
  }
  const { result, via, mode } = await act(
    { cmd: 'ban', targets: targets.map(formatCidr), ...(options.ttl !== undefined && { ttl: options.ttl }), ...(options.reason !== undefined && { reason: options.reason }), ...(options.force && { force: true }) },
    options,
  );
  const results = result as BanResult[];
  const counts = { banned: 0, already: 0, refused: 0 };
  for (const r of results) {
    counts[r.status]++;
    if (results.length <= 50 || r.status === 'refused') {
      const line = r.status === 'refused' ? `refused ${r.target}: ${r.reason}` : `${r.status === 'banned' ? 'banned' : 'already banned'} ${r.target} until ${r.expiresAt}`;
      process.stdout.write(`${line}\n`);
    }
  }
  process.stdout.write(`${counts.banned} banned, ${counts.already} already banned, ${counts.refused} refused${via === 'daemon' ? ' (through the running daemon)' : ''}${mode === 'dry-run' ? ' — dry-run: the firewall was not changed (use --enforce)' : ''}\n`);
  if (counts.refused > 0) process.exitCode = 1;
}
