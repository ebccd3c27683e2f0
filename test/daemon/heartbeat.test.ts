// The daemon's sign of life names the table size, the top source and what crossed a threshold.
import { describe, expect, it } from 'vitest';
import { heartbeat } from '../../src/daemon/heartbeat.js';
import { parseTable } from '../../src/table/parse-table.js';

const ss = (rows: string[]) =>
  parseTable(['State Recv-Q Send-Q Local Address:Port Peer Address:Port', ...rows].join('\n'), 'ss').rows;
const est = (peer: string) => `ESTAB 0 0 192.0.2.1:443 ${peer}:40000`;

describe('heartbeat', () => {
  it('names the socket count, the top source with its count, and nothing over a threshold', () => {
    const table = ss([
      'LISTEN 0 128 0.0.0.0:443 0.0.0.0:*',
      est('198.51.100.77'),
      est('198.51.100.77'),
      est('198.51.100.77'),
      est('203.0.113.5'),
    ]);
    const beat = heartbeat(table, [], 0);
    expect(beat.msg).toBe('scan: 5 sockets, top source 198.51.100.77 with 3, nothing over a threshold; 0 active bans');
    expect(beat.fields).toEqual({
      event: 'scan',
      sockets: 5,
      topSource: '198.51.100.77',
      topCount: 3,
      overThreshold: 0,
      activeBans: 0,
    });
  });

  it('counts the sources over a threshold and says when there is no remote source', () => {
    const verdict = { kind: 'ban', target: '198.51.100.77', rule: 'r', count: 30, threshold: 20, at: 0 } as const;
    expect(heartbeat(ss(['LISTEN 0 128 0.0.0.0:443 0.0.0.0:*']), [verdict], 1).msg).toBe(
      'scan: 1 socket, no remote sources, 1 source(s) over a threshold; 1 active ban',
    );
  });
});
