// `floodgate policy check [FILE]`: validate a policy and print it with every default filled in.
import { loadPolicy, renderPolicy } from '../policy/load-policy.js';

export function policyCheckCommand(file: string | undefined): void {
  const { policy, file: path } = loadPolicy(file);
  process.stdout.write(`# ${path}: valid\n${renderPolicy(policy)}`);
}
