// The Redis fleet's stream entry: one field, FORMAT, whose value is the whole change as a JSON
// array, `["ban",host,target,rule,expiresAt]` or `["unban",host,target]`. One field rather than one
// per value: the client turns each field and value of a reply into a string of its own, and a 10k
// burst's 110,000 of them were most of what a host spent reading it. The field's name is the format:
// a later format gets a new name, and a host that does not know it skips the entry and says so.

/** The field, and the format's name. */
export const FORMAT = 'fg1';

export type StreamChange =
  | {
      readonly op: 'ban';
      readonly host: string;
      readonly target: string;
      readonly rule: string;
      readonly expiresAt: number;
    }
  | { readonly op: 'unban'; readonly host: string; readonly target: string };

/** The value of a ban entry. */
export function encodeBan(host: string, target: string, rule: string, expiresAt: number): string {
  return JSON.stringify(['ban', host, target, rule, expiresAt]);
}

/** The value of an unban entry. */
export function encodeUnban(host: string, target: string): string {
  return JSON.stringify(['unban', host, target]);
}

/**
 * What every ban entry of `host` starts with: a host recognises its own bans by it without decoding
 * them (it has them already). Its unbans are decoded: a fleet-wide unban lifts the fleet's part too.
 */
export function ownBanPrefix(host: string): string {
  return `["ban",${JSON.stringify(host)},`;
}

const isText = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * An entry's fields as XREAD returns them, decoded; a string says why the entry cannot be (another
 * format, or not one this version wrote): such an entry is never applied.
 */
export function decodeEntry(fields: readonly string[]): StreamChange | string {
  if (fields.length !== 2 || fields[0] !== FORMAT) {
    const names = fields.filter((_, i) => i % 2 === 0).join(', ');
    return `not in format ${FORMAT} (field(s) ${names || 'none'})`;
  }
  let value: unknown;
  try {
    value = JSON.parse(fields[1]!);
  } catch {
    return `${FORMAT}: not JSON`;
  }
  if (!Array.isArray(value)) return `${FORMAT}: not a list`;
  const [op, host, target, rule, expiresAt] = value as unknown[];
  if (!isText(host) || !isText(target)) return `${FORMAT}: no host or target`;
  if (op === 'ban' && value.length === 5) {
    if (typeof rule !== 'string' || !Number.isSafeInteger(expiresAt) || (expiresAt as number) <= 0)
      return `${FORMAT}: a ban without a rule or a valid expiry`;
    return { op, host, target, rule, expiresAt: expiresAt as number };
  }
  if (op === 'unban' && value.length === 3) return { op, host, target };
  return `${FORMAT}: not a ban or an unban`;
}
