// `floodgate policy check [FILE]`: validate a policy and print it with every default filled in.
// Without FILE it checks the policy `floodgate run` would use (policy-lookup.ts), which is what
// the systemd unit's ExecStartPre wants.
import { renderPolicy } from '../policy/load-policy.js';
import { redactUrl } from '../policy/policy-diff.js';
import type { Policy } from '../policy/schema.js';
import { lookUpPolicy } from './policy-lookup.js';

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

export async function policyCheckCommand(file: string | undefined): Promise<void> {
  const { policy, file: path } = await lookUpPolicy({ policy: file });
  process.stdout.write(`# ${path}: valid\n${renderPolicy(printablePolicy(policy))}`);
}
