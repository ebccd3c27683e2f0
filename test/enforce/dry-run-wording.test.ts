// Dry-run never changes the firewall, so nothing it says may claim a rule is "in place" or "removed".
import { describe, expect, it } from 'vitest';
import { BanStore } from '../../src/bans/ban-store.js';
import { stoppedMessage } from '../../src/daemon/daemon.js';
import { Enforcer } from '../../src/enforce/enforcer.js';
import { buildAllowlist } from '../../src/net/allowlist.js';
import { parseCidr } from '../../src/net/ip.js';
import { FakeBackend } from '../support/fake-backend.js';
import { memoryLog } from '../support/memory-log.js';
import { RecordingRunner } from '../support/recording-runner.js';

const CLAIMS = /in place|removed|flushed/;

describe('dry-run wording', () => {
  it('unban, expiry and flush say "would" and claim no rule went', async () => {
    const memory = memoryLog();
    const enforcer = new Enforcer({
      backend: new FakeBackend(true),
      store: new BanStore(undefined, { ttl: 600_000, maxTtl: 3_600_000 }),
      log: memory.log,
      runner: new RecordingRunner(),
      protectedSet: buildAllowlist([], []),
      rate: 1000,
      maxActive: 100,
      killConnections: false,
      clock: () => 0,
    });
    enforcer.ban({ target: parseCidr('198.51.100.7')!, rule: 'manual', count: 0 }, 0);
    enforcer.ban({ target: parseCidr('198.51.100.8')!, rule: 'manual', count: 0 }, 0);
    enforcer.unban(parseCidr('198.51.100.9')!, 0);
    enforcer.expire(600_000 + 1);
    await enforcer.flush();
    const messages = memory.events().map((e) => e.msg);
    expect(messages.filter((m) => !m.startsWith('dry-run: '))).toEqual([]);
    expect(messages.filter((m) => CLAIMS.test(m))).toEqual([]);
    expect(messages).toContain('dry-run: would lift ban of 198.51.100.9 (no active ban)');
    expect(messages).toContain('dry-run: would expire ban of 198.51.100.7');
  });

  it('the daemon’s last line', () => {
    expect(stoppedMessage('dry-run', false, 5)).not.toMatch(CLAIMS);
    expect(stoppedMessage('dry-run', true, 0)).not.toMatch(/in place|rule removed/);
    expect(stoppedMessage('enforce', false, 5)).toBe(
      'stopped; 5 ban(s) stay in place and keep expiring after a restart',
    );
  });
});
