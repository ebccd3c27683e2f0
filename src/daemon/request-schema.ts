// Checks a control request field by field before anything acts on it: the socket is a boundary, and
// a ttl of "abc" once made a ban that never expired and broke `list`. Loaded by the daemon and by a
// manual command that works without one (zod costs the socket path's CLI too much to load there).
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { BOUNDS } from '../policy/duration.js';
import { MAX_REASON_LENGTH, type Request } from './protocol.js';

// The same bounds as the --ttl and --grace flags (policy/duration.ts): a request through the socket
// may not ask for what the command line refuses.
const TTL = BOUNDS.ttl;
const GRACE = BOUNDS.grace;

const mode = z.enum(['dry-run', 'enforce']).optional();
const targets = z.array(z.string().max(100)).min(1);

const schema = z.discriminatedUnion('cmd', [
  z.strictObject({
    cmd: z.literal('ban'),
    mode,
    targets,
    ttl: z.number().int().min(TTL.min).max(TTL.max).optional(),
    reason: z.string().max(MAX_REASON_LENGTH).optional(),
    force: z.boolean().optional(),
  }),
  z.strictObject({
    cmd: z.literal('unban'),
    mode,
    targets,
    grace: z.number().int().min(GRACE.min).max(GRACE.max).optional(),
  }),
  z.strictObject({ cmd: z.literal('list'), mode }),
  z.strictObject({ cmd: z.literal('flush'), mode }),
  z.strictObject({ cmd: z.literal('status'), mode }),
  z.strictObject({ cmd: z.literal('events'), mode }),
]);

const EXPECTED: Record<string, string> = {
  cmd: 'one of "ban", "unban", "list", "flush", "status", "events"',
  mode: '"dry-run" or "enforce"',
  targets: 'a non-empty list of addresses or networks, each a string of at most 100 characters',
  ttl: `a whole number of milliseconds from ${TTL.min} (1s) to ${TTL.max} (3650d)`,
  grace: `a whole number of milliseconds from ${GRACE.min} to ${GRACE.max} (3650d)`,
  reason: `a string of at most ${MAX_REASON_LENGTH} characters`,
  force: 'true or false',
};

/** What was received, short: a 10 MB string is not repeated back in full. */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  const kind = Array.isArray(value)
    ? `an array of ${value.length}`
    : value === null
      ? 'null'
      : typeof value === 'string'
        ? `a string of ${value.length} characters`
        : typeof value;
  return `${text} (${kind})`;
}

/** The request, typed; a UsageError naming the field, what it must be and what came. */
export function parseRequest(raw: unknown): Request {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new UsageError(`a control request must be a JSON object with a "cmd", got ${shown(raw)}`);
  const result = schema.safeParse(raw);
  if (result.success) return result.data as Request;
  const issue = result.error.issues[0]!;
  const record = raw as Record<string, unknown>;
  if (issue.code === 'unrecognized_keys') {
    throw new UsageError(`unknown field(s) in a "${String(record.cmd)}" request: ${issue.keys.join(', ')}`);
  }
  const field = String(issue.path[0] ?? 'cmd');
  const value = record[field];
  // The value at the issue's path inside the field, when the path goes deeper than the field.
  const inner = issue.path
    .slice(1)
    .reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)?.[k as PropertyKey], value);
  const where = issue.path.length > 1 ? ` (at ${issue.path.join('.')}: ${shown(inner)})` : '';
  throw new UsageError(`${field}: expected ${EXPECTED[field] ?? issue.message}, got ${shown(value)}${where}`);
}
