// A SYN flood from many sources with one SYN each, answered by the kernel's SYN cookies: no source
// crosses a threshold, so nothing can be banned, but the daemon must say loudly that an attack is
// under way (from the kernel's flood counters).
import { describe, expect, it } from 'vitest';
import {
  Daemon,
  INTERVAL_MS,
  SKIP_REASON,
  bannedSources,
  range4,
  sleep,
  tempDir,
  useLab,
  writePolicy,
} from './support.js';

describe.skipIf(SKIP_REASON !== null)('spoofed-style SYN flood with SYN cookies on', () => {
  const shared = useLab({ syncookies: true });

  it('logs an attack-in-progress event from the SYN cookie rate and bans nothing', async () => {
    const { lab } = shared;
    const dir = tempDir('cookies');
    const policy = writePolicy(dir, (p) => {
      p.flood_signal = { syncookies_per_second: 20 };
    });
    const daemon = await Daemon.start(lab, { policy, stateDir: `${dir}/state` });
    // The first pass takes the counters' baseline; rates come from the passes after it.
    await sleep(INTERVAL_MS + 200);
    expect(daemon.events.filter((e) => e.event === 'attack')).toEqual([]);

    // A listener with a small backlog: past 64 half-open requests the kernel answers with cookies.
    await lab.listen({ host: '0.0.0.0', port: 8080, backlog: 64 });
    await lab.synFlood({
      sources: range4('203.0.113.', 1, 200),
      perSource: 1,
      port: 8080,
      exact: false,
      timeoutMs: 5000,
    });

    const attack = await daemon.waitForEvent('an attack event', (e) => e.event === 'attack', 4 * INTERVAL_MS + 2000);
    expect(attack.level).toBe(40); // warn
    expect(String(attack.msg)).toMatch(/SYN FLOOD IN PROGRESS/);
    expect((attack.reasons as string[]).some((reason) => /SYN cookies\/s sent/.test(reason))).toBe(true);
    // Each source holds at most one half-open socket: no per-ip or per-net rule applies.
    expect(daemon.events.filter((e) => e.event === 'ban')).toEqual([]);
    expect(await bannedSources(lab)).toEqual([]);
  });
});
