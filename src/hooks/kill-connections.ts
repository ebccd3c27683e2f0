// Destroys the existing sockets of newly banned sources (`ss -K`), established and half-open, so the
// server recovers at once: the targeted alternative to restarting the web server.
import { type Cidr, formatIp, bitsOf } from '../net/ip.js';

/**
 * ss filter terms for one target; an IPv4 target also matches its IPv4-mapped form on dual-stack
 * sockets. ss reads an IPv6 host only in brackets ("[2001:db8::7]"), but a prefix only without
 * them ("2001:db8::/64"): anything else is taken for a port.
 */
function dstTerms(target: Cidr): string[][] {
  const full = target.prefix === bitsOf(target.family);
  const ip = formatIp(target.family, target.value);
  if (target.family === 6) return [['dst', full ? `[${ip}]` : `${ip}/${target.prefix}`]];
  return [
    ['dst', full ? ip : `${ip}/${target.prefix}`],
    ['dst', full ? `[::ffff:${ip}]` : `::ffff:${ip}/${target.prefix + 96}`],
  ];
}

/** One `ss -K` argv per group of targets, so a batch of bans costs a few processes, not one each. */
export function killCommands(targets: readonly Cidr[], perCommand = 64): string[][] {
  const commands: string[][] = [];
  for (let i = 0; i < targets.length; i += perCommand) {
    const terms = targets.slice(i, i + perCommand).flatMap(dstTerms);
    const filter = terms.flatMap((term, k) => (k === 0 ? term : ['or', ...term]));
    // -a: ss's default state filter leaves out SYN-RECV, and half-open sockets are the point here.
    commands.push(['ss', '-K', '-t', '-n', '-a', '(', ...filter, ')']);
  }
  return commands;
}
