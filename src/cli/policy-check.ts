// `floodgate policy check [FILE] [--json | -q]`: validate a policy and print it with every default
// filled in, or as one JSON object, or nothing (the exit code says it). Without FILE it checks the
// policy `floodgate run` would use (policy-lookup.ts), which is what the systemd unit's ExecStartPre wants.
import { ConfigError, type PolicyProblem, UsageError } from '../errors.js';
import { DEFAULT_POLICY_PATH, loadPolicy, plainPolicy, renderPolicy } from '../policy/load-policy.js';
import { redactUrl } from '../policy/policy-diff.js';
import type { Policy } from '../policy/schema.js';
import { choosePolicy } from './policy-lookup.js';

export interface PolicyCheckOptions {
  /** One JSON object on stdout (PolicyCheckJson), valid or not; the exit code is the same. */
  readonly json?: boolean;
  /** Nothing printed, errors included: the exit code alone says whether the policy is valid. */
  readonly quiet?: boolean;
}

/** What `policy check --json` prints. */
export interface PolicyCheckJson {
  /** The file checked (the embedded default's path when none was found). */
  readonly file: string;
  readonly ok: boolean;
  /** Every mistake with its file, line and key, as the text output lists them; empty when ok. */
  readonly errors: readonly PolicyProblem[];
  /** The effective policy, every default filled in, as the text output prints it; null when not ok. */
  readonly policy: Record<string, unknown> | null;
}

/**
 * The policy as printed: a webhook's headers (tokens) and its URL's path (often the secret itself)
 * are hidden, since ExecStartPre's output goes to the journal.
 */
export function printablePolicy(policy: Policy): Policy {
  const webhook = policy.notify?.webhook;
  if (webhook === undefined) return policy;
  const headers = webhook.headers && Object.fromEntries(Object.keys(webhook.headers).map((name) => [name, '(hidden)']));
  return {
    ...policy,
    notify: { ...policy.notify!, webhook: { ...webhook, url: redactUrl(webhook.url), ...(headers && { headers }) } },
  };
}

export async function policyCheckCommand(file: string | undefined, options: PolicyCheckOptions = {}): Promise<void> {
  if (options.json && options.quiet) throw new UsageError('--json and --quiet contradict each other: give one');
  const chosen = choosePolicy({ policy: file, defaultPath: DEFAULT_POLICY_PATH }).file;
  const path = chosen ?? DEFAULT_POLICY_PATH;
  const answer = (json: PolicyCheckJson): void => {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  };
  let policy: Policy;
  try {
    policy = loadPolicy(chosen).policy;
  } catch (error) {
    // Without --json or --quiet the error goes to the one top-level catch, as for every command.
    if (!(error instanceof ConfigError) || !(options.json || options.quiet)) throw error;
    process.exitCode = error.exitCode;
    if (options.json) {
      const errors = error.problems ?? [{ file: path, line: null, key: null, message: error.message }];
      answer({ file: path, ok: false, errors, policy: null });
    }
    return;
  }
  if (options.quiet) return;
  if (options.json) {
    answer({ file: path, ok: true, errors: [], policy: plainPolicy(printablePolicy(policy)) });
    return;
  }
  process.stdout.write(`# ${path}: valid\n${renderPolicy(printablePolicy(policy))}`);
}
