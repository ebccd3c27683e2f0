// applyBatch reports every change of a batch, however large: a 200k batch once crashed after the
// firewall had taken it (push(...changes) overflows V8's stack as arguments).
import { describe, expect, it } from 'vitest';
import { applyBatch } from '../../src/firewall/apply-batch.js';
import type { CommitResult, FirewallChange } from '../../src/firewall/backend.js';
import { parseCidr } from '../../src/net/ip.js';

describe('applyBatch', () => {
  it('records 200,000 changes applied in one batch', async () => {
    const changes: FirewallChange[] = Array.from({ length: 200_000 }, (_, i) => ({
      op: 'add',
      target: parseCidr(`198.18.${(i >> 8) & 255}.${i & 255}`)!,
    }));
    const result: CommitResult = { applied: [], failed: [] };
    let batches = 0;
    await applyBatch(
      changes,
      {
        batch: async () => void batches++,
        single: async () => expect.fail('no single change after a batch that worked'),
      },
      result,
    );
    expect(batches).toBe(1);
    expect(result.applied).toHaveLength(200_000);
    expect(result.failed).toEqual([]);
  });
});
