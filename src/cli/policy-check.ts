// `floodgate policy check [FILE]`: validate a policy and print it with every default filled in.
// Without FILE it checks the policy `floodgate run` would use (policy-lookup.ts), which is what
// the systemd unit's ExecStartPre wants.
import { renderPolicy } from '../policy/load-policy.js';
import { lookUpPolicy } from './policy-lookup.js';

export async function policyCheckCommand(file: string | undefined): Promise<void> {
  const { policy, file: path } = await lookUpPolicy({ policy: file });
  process.stdout.write(`# ${path}: valid\n${renderPolicy(policy)}`);
}
