// `floodgate flush`: removes every rule this state directory's floodgate owns and clears its bans.
import { type CommonOptions, act } from './act.js';

export async function flushCommand(options: CommonOptions): Promise<void> {
  const { result, mode } = await act({ cmd: 'flush' }, options);
  const { cleared } = result as { cleared: number };
  process.stdout.write(`flushed: ${cleared} ban(s) cleared and every rule of this state directory's floodgate removed${mode === 'dry-run' ? ' (dry-run: only the would-be bans were cleared)' : ''}\n`);
}
