// `floodgate flush`: removes every rule this state directory's floodgate owns and clears its bans.
import { type CommonOptions, act } from './act.js';

export async function flushCommand(options: CommonOptions): Promise<void> {
  const { result, mode } = await act({ cmd: 'flush' }, options);
  const { cleared } = result as { cleared: number };
  process.stdout.write(
    mode === 'dry-run'
      ? `dry-run: ${cleared} would-be ban(s) cleared; the firewall was not changed (use --enforce)\n`
      : `flushed: ${cleared} ban(s) cleared and every rule of this state directory's floodgate removed\n`,
  );
}
