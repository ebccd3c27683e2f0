// Strict validation of ban targets typed by people: an address or a network, never anything that
// could reach a command line unchecked, and no accidental bans of huge networks.
import { UsageError } from '../errors.js';
import { type Cidr, formatCidr, parseCidr } from './ip.js';

/** Networks wider than these are refused without --force. */
export const WIDEST = { 4: 16, 6: 32 } as const;

export function parseTarget(text: string, force = false): Cidr {
  const trimmed = text.trim();
  const cidr = /^[0-9A-Fa-f:./]+$/.test(trimmed) ? parseCidr(trimmed) : null;
  if (cidr === null) {
    throw new UsageError(`${JSON.stringify(text)} is not an IP address or network (expected for example 198.51.100.7, 2001:db8::7 or 203.0.113.0/24)`);
  }
  if (cidr.prefix === 0) {
    throw new UsageError(`${text} covers every address: refused (a /0 ban would cut this host off; not even --force allows it)`);
  }
  if (!force && cidr.prefix < WIDEST[cidr.family]) {
    throw new UsageError(`${text} is wider than /${WIDEST[cidr.family]} (${formatCidr(cidr)}): refused without --force`);
  }
  return cidr;
}

/** Lines of a --from-file list: one target per line, "#" comments and blank lines ignored. */
export function parseTargetList(text: string, file: string, force = false): Cidr[] {
  const out: Cidr[] = [];
  text.split('\n').forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const line = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (line === '') return;
    try {
      out.push(parseTarget(line, force));
    } catch (error) {
      throw new UsageError(`${file}:${i + 1}: ${(error as Error).message}`);
    }
  });
  return out;
}
