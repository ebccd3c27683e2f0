// `floodgate policy init [FILE]`: writes a commented copy of the embedded default policy where every
// command looks for it (/etc/floodgate/policy.yaml), never over an existing file.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { defaultPolicyText } from '../policy/load-policy.js';
import { etcPolicyPath } from './policy-lookup.js';

function header(file: string, isEtc: boolean): string {
  return [
    `# floodgate policy, written by \`floodgate policy init\` from the embedded default.`,
    ...(isEtc
      ? ['# Every floodgate command reads this file unless given --policy or $FLOODGATE_POLICY.']
      : [`# Use it with --policy ${file} or FLOODGATE_POLICY=${file}.`]),
    '# Check it after editing with `floodgate policy check`, which prints every key with its default;',
    '# a running `floodgate run` picks changes up on restart (systemctl restart floodgate).',
    '',
  ].join('\n');
}

export function policyInitCommand(file: string | undefined): void {
  const etc = etcPolicyPath();
  const target = resolve(file ?? etc);
  // The default policy's own first line describes it as the embedded default: replace it.
  const body = defaultPolicyText().replace(/^# floodgate's embedded default policy[^\n]*\n/, '');
  const dir = dirname(target);
  try {
    // 0755, not the umask's choice: the unit and the admin's shell both read it.
    const created = mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (created !== undefined) chmodSync(dir, 0o755);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot create the directory ${dir} for the policy ` +
        `(${code ?? (error as Error).message})${code === 'EACCES' ? ': run as root, or give another FILE' : ''}`,
      { cause: error },
    );
  }
  try {
    writeFileSync(target, header(target, target === resolve(etc)) + body, { flag: 'wx', mode: 0o644 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new UsageError(`${target} already exists: not overwritten (remove it first, or give another FILE)`, {
        cause: error,
      });
    throw new UsageError(
      `cannot write the policy ${target} ` +
        `(${code ?? (error as Error).message})${code === 'EACCES' ? ': run as root, or give another FILE' : ''}`,
      { cause: error },
    );
  }
  process.stdout.write(
    `wrote ${target}\nedit it, then check it with: floodgate ` +
      `policy check${target === resolve(etc) ? '' : ` ${target}`}\n`,
  );
}
