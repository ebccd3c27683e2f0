// Strict validation of ban targets typed by people: an address or a network, never anything that
// could reach a command line unchecked, and no accidental bans of huge networks.
import { UsageError, quoteInput } from '../errors.js';
import { type Cidr, formatCidr, parseCidr } from './ip.js';

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
    throw new UsageError(
      `${text} is wider than /${WIDEST[cidr.family]} (${formatCidr(cidr)}): refused without --force`,
    );
  }
  return cidr;
}

/** The longest line a --from-file list may have: a target is at most 49 characters, the rest is comment. */
export const MAX_TARGET_LINE = 4096;

/** Lines of a --from-file list: one target per line, "#" comments and blank lines ignored. */
export function parseTargetList(text: string, file: string, force = false): Cidr[] {
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
    try {
      out.push(parseTarget(line, force));
    } catch (error) {
      throw new UsageError(`${file}:${i}: ${(error as Error).message}`);
    }
  }
  return out;
}
