// Reads a YAML policy, validates it and turns every problem into "file:line key: expected …, got …".
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Alias, LineCounter, type Node, isMap, isScalar, parseDocument, stringify, visit } from 'yaml';
import { z } from 'zod';
import { ConfigError, type PolicyProblem } from '../errors.js';
import { ReadBoundedError, readBounded } from '../system/read-bounded.js';
import { formatDuration, formatRate } from './duration.js';
import { EMBEDDED_POLICY_NAME, EMBEDDED_POLICY_TEXT } from './embedded-policy.js';
import { type Policy, policySchema } from './schema.js';

/**
 * policies/default.yaml, shipped beside dist/ and src/: above
 * dist/src/policy/ when built, above src/policy/ from source.
 */
function shippedDefaultPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, basename(join(here, '..', '..')) === 'dist' ? '../../..' : '../..', 'policies', 'default.yaml');
}

/**
 * Where the embedded default policy comes from: a file in the
 * package, or a name for the copy inside the single executable.
 */
export const DEFAULT_POLICY_PATH = EMBEDDED_POLICY_TEXT === undefined ? shippedDefaultPath() : EMBEDDED_POLICY_NAME;

/** The embedded default policy's text, comments included. */
export function defaultPolicyText(): string {
  return EMBEDDED_POLICY_TEXT ?? readFileSync(DEFAULT_POLICY_PATH, 'utf8');
}

type PathSegment = string | number;

function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path)
    out += typeof segment === 'number' ? `[${segment}]` : out === '' ? segment : `.${segment}`;
  return out === '' ? '(top level)' : out;
}

/** The keys an object schema allows at `path`, for "unknown key" messages. */
function allowedKeys(path: readonly PathSegment[]): string[] {
  let schema: z.ZodType = policySchema;
  const unwrap = (s: z.ZodType): z.ZodType => {
    for (;;) {
      const def = (s as unknown as { def: { type: string; innerType?: z.ZodType; element?: z.ZodType } }).def;
      if (def.innerType !== undefined) s = def.innerType;
      else return s;
    }
  };
  for (const segment of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodArray) schema = schema.element as z.ZodType;
    else if (schema instanceof z.ZodObject && typeof segment === 'string') schema = schema.shape[segment] as z.ZodType;
    else return [];
  }
  schema = unwrap(schema);
  if (schema instanceof z.ZodArray) schema = unwrap(schema.element as z.ZodType);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/** The text of a problem, as every command prints it: "file:line key: message". */
function problemText(p: PolicyProblem): string {
  return `${p.file}${p.line === null ? '' : `:${p.line}`}${p.key === null ? '' : ` ${p.key}:`} ${p.message}`;
}

/** A policy file's mistakes as one ConfigError: their lines for the message, the list for --json. */
function policyError(problems: readonly PolicyProblem[], options?: { cause?: unknown; message?: string }): ConfigError {
  return new ConfigError(options?.message ?? problems.map(problemText).join('\n'), { cause: options?.cause, problems });
}

export interface LoadedPolicy {
  readonly policy: Policy;
  readonly file: string;
}

export function parsePolicy(text: string, file: string): Policy {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);
  if (doc.errors.length > 0) {
    const error = doc.errors[0]!;
    if (error.code === 'DUPLICATE_KEY') {
      // The parser points at the second key but does not name it: read it from the text.
      const key = /^[^:\n]*/
        .exec(text.slice(error.pos[0]))![0]
        .trim()
        .replace(/^(["'])(.*)\1$/, '$2');
      throw policyError([
        {
          file,
          line: lineAt(error.pos[0]),
          key: key.length > 80 ? `${key.slice(0, 80)}…` : key,
          message: 'given twice in the same mapping (not valid YAML: keys must be unique)',
        },
      ]);
    }
    throw policyError([
      { file, line: lineAt(error.pos[0]), key: null, message: `not valid YAML: ${error.message.split('\n')[0]}` },
    ]);
  }
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (error) {
    // Aliases are resolved here, not while parsing: an undefined one, or an alias bomb (the library
    // stops it), fails without a position. Point at the alias that cannot resolve, else the first.
    let at: Alias | undefined;
    visit(doc, {
      Alias(_, node) {
        if (at === undefined || (at.resolve(doc) !== undefined && node.resolve(doc) === undefined)) at = node;
      },
    });
    const where = at === undefined ? 1 : lineAt(at.range?.[0]);
    throw policyError(
      [
        {
          file,
          line: where,
          key: null,
          message: `not valid YAML: ${(error as Error).message}${at === undefined ? '' : ` (at the alias *${at.source})`}`,
        },
      ],
      { cause: error },
    );
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw policyError([
      {
        file,
        line: 1,
        key: '(top level)',
        message:
          'expected a mapping of policy keys (mode, interval, rules, …), ' +
          `got ${Array.isArray(data) ? 'a list' : JSON.stringify(data)}`,
      },
    ]);
  }

  // The line of the nearest node that exists along `path` (a missing key points at its parent).
  const lineOf = (path: readonly PathSegment[], key?: string): number => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as Node | undefined;
      if (node === undefined || node === null) continue;
      if (key !== undefined && n === path.length && isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && item.key.value === key);
        if (pair && isScalar(pair.key)) return lineAt(pair.key.range?.[0]);
      }
      return lineAt(node.range?.[0]);
    }
    return 1;
  };

  const result = policySchema.safeParse(data, { reportInput: true });
  if (result.success) {
    const names = new Set<string>();
    result.data.rules.forEach((rule, i) => {
      if (names.has(rule.name)) {
        throw policyError([
          {
            file,
            line: lineOf(['rules', i, 'name']),
            key: `rules[${i}].name`,
            message: `expected a name no other rule has, got ${JSON.stringify(rule.name)} twice`,
          },
        ]);
      }
      names.add(rule.name);
    });
    return result.data;
  }

  const problems = result.error.issues.flatMap((issue): PolicyProblem[] => {
    const path = issue.path as PathSegment[];
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(path);
      return issue.keys.map((key) => ({
        file,
        line: lineOf(path, key),
        key: formatPath([...path, key]),
        message: `unknown key${allowed.length ? ` (expected one of: ${allowed.join(', ')})` : ''}`,
      }));
    }
    let message = issue.message;
    if (issue.code === 'invalid_type' && !/^expected .*, got /.test(message)) {
      message =
        issue.input === undefined
          ? 'required, but missing'
          : `expected ${issue.expected}, got ${JSON.stringify(issue.input)}`;
    }
    return [{ file, line: lineOf(path), key: formatPath(path), message }];
  });
  throw policyError(problems);
}

/** A policy is a page or two; `--policy /dev/zero` was read for ever. */
export const MAX_POLICY_BYTES = 1024 * 1024;

export function loadPolicy(file?: string): LoadedPolicy {
  const path = file ?? DEFAULT_POLICY_PATH;
  let text: string;
  try {
    text =
      file === undefined || path === DEFAULT_POLICY_PATH
        ? defaultPolicyText()
        : readBounded(path, MAX_POLICY_BYTES, 'a policy');
  } catch (error) {
    if (!(error instanceof ReadBoundedError)) throw error;
    throw policyError([{ file: path, line: null, key: null, message: `cannot read the file: ${error.message}` }], {
      cause: error,
      message: `cannot read policy ${path}: ${error.message}`,
    });
  }
  return { policy: parsePolicy(text, path), file: path };
}

/** The policy with every default written out and durations as text again, as `policy check --json` prints it. */
export function plainPolicy(policy: Policy): Record<string, unknown> {
  return {
    ...policy,
    interval: formatDuration(policy.interval),
    reconcile_interval: formatDuration(policy.reconcile_interval),
    ban: {
      ...policy.ban,
      ttl: formatDuration(policy.ban.ttl),
      max_ttl: formatDuration(policy.ban.max_ttl),
      rate: formatRate(policy.ban.rate),
    },
    ...(policy.reload && {
      reload: {
        ...policy.reload,
        debounce: formatDuration(policy.reload.debounce),
        timeout: formatDuration(policy.reload.timeout),
      },
    }),
    ...(policy.fleet && {
      fleet: {
        ...policy.fleet,
        ...('poll' in policy.fleet && { poll: formatDuration(policy.fleet.poll) }),
        resync: formatDuration(policy.fleet.resync),
      },
    }),
  };
}

/** The policy as YAML with every default written out and durations as text again. */
export function renderPolicy(policy: Policy): string {
  return stringify(plainPolicy(policy), { flowCollectionPadding: false });
}
