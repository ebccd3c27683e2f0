// Strict validation of ban targets typed by people: an address or a network, never anything that
// could reach a command line unchecked, and no accidental bans of huge networks.
import { UsageError, quoteInput } from '../errors.js';
import { type Cidr, bitsOf, formatCidr, parseCidr, parseIp } from './ip.js';

/** Networks wider than these are refused without --force. */
export const WIDEST = { 4: 16, 6: 32 } as const;

const TARGET_CHARS = /^[0-9A-Fa-f:./]+$/;

/**
 * How a text that is no target is quoted: up to its first character that cannot be in a target, or
 * its first 80 characters. A list file named by mistake (a symlink to /etc/shadow, a binary file)
 * then shows no more than a character or two of its first line.
 */
function quoteBadTarget(text: string): string {
  const bad = /[^0-9A-Fa-f:./]/.exec(text);
  if (bad === null) return quoteInput(text);
  const shown = text.slice(0, bad.index + 1);
  return `${quoteInput(shown)}${text.length > shown.length ? '…' : ''}`;
}

/**
 * "203.0.113.10/24 is the network 203.0.113.0/24" when the text sets host bits, which parsing
 * clears; null when it names its network exactly (in any spelling).
 */
export function hostBitsNote(text: string, cidr: Cidr): string | null {
  if (cidr.prefix === bitsOf(cidr.family)) return null;
  const trimmed = text.trim();
  const address = parseIp(trimmed.slice(0, trimmed.indexOf('/')));
  return address === null || address.value === cidr.value ? null : `${trimmed} is the network ${formatCidr(cidr)}`;
}

export function parseTarget(text: string, force = false): Cidr {
  const trimmed = text.trim();
  const cidr = TARGET_CHARS.test(trimmed) ? parseCidr(trimmed) : null;
  if (cidr === null) {
    throw new UsageError(
      `${quoteBadTarget(trimmed)} is not an IP address or network ` +
        '(expected for example 198.51.100.7, 2001:db8::7 or 203.0.113.0/24)',
    );
  }
  if (cidr.prefix === 0) {
    throw new UsageError(
      `${text} covers every address: refused (a /0 ban would cut this host off; not even --force allows it)`,
    );
  }
  if (!force && cidr.prefix < WIDEST[cidr.family]) {
    // The network is named only when the text is not already it: "10.1.2.3/15 is the network 10.0.0.0/15, …".
    const network = formatCidr(cidr);
    const what = network === trimmed.toLowerCase() ? `${network} is` : `${trimmed} is the network ${network},`;
    throw new UsageError(`${what} wider than /${WIDEST[cidr.family]}: refused without --force`);
  }
  return cidr;
}

/** The longest line a --from-file list may have: a target is at most 49 characters, the rest is comment. */
export const MAX_TARGET_LINE = 4096;

/**
 * Lines of a --from-file list: one target per line, "#" comments and blank lines ignored. `onNote`
 * hears of a target whose host bits were dropped: its index in the answer, and the note with the
 * file and line ("bans.txt:4: 203.0.113.10/24 is the network 203.0.113.0/24").
 */
export function parseTargetList(
  text: string,
  file: string,
  force = false,
  onNote?: (index: number, note: string) => void,
): Cidr[] {
  const out: Cidr[] = [];
  let start = 0;
  for (let i = 1; start <= text.length; i++) {
    const newline = text.indexOf('\n', start);
    const end = newline < 0 ? text.length : newline;
    if (end - start > MAX_TARGET_LINE) {
      throw new UsageError(
        `${file}:${i}: a line of ${end - start} characters; expected one target and an optional ` +
          `# comment, at most ${MAX_TARGET_LINE} characters (is this a list of addresses?)`,
      );
    }
    const raw = text.slice(start, end);
    start = end + 1;
    const hash = raw.indexOf('#');
    const line = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (line === '') continue;
    let target: Cidr;
    try {
      target = parseTarget(line, force);
    } catch (error) {
      throw new UsageError(`${file}:${i}: ${(error as Error).message}`);
    }
    if (onNote !== undefined) {
      const note = hostBitsNote(line, target);
      if (note !== null) onNote(out.length, `${file}:${i}: ${note}`);
    }
    out.push(target);
  }
  return out;
}
