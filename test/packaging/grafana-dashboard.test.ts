// The Grafana dashboard in packaging/grafana/ queries only metrics that floodgate exposes: a renamed
// metric would leave a panel empty without anyone noticing.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FloodgateMetrics } from '../../src/metrics/metrics.js';
import { SocketTable } from '../../src/table/socket-table.js';

const DASHBOARD = new URL('../../packaging/grafana/floodgate-dashboard.json', import.meta.url);

interface Panel {
  readonly title: string;
  readonly type: string;
  readonly targets?: readonly { readonly expr: string }[];
}

describe('packaging/grafana/floodgate-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: Panel[];
    templating: { list: { query: unknown }[] };
  };
  const exprs = dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })),
  );
  for (const variable of dashboard.templating.list)
    if (typeof variable.query === 'object') exprs.push({ panel: 'variables', expr: JSON.stringify(variable.query) });

  it('has a query in every panel but the rows', () => {
    for (const panel of dashboard.panels)
      if (panel.type !== 'row') expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
  });

  it('queries only metrics the exposition has', async () => {
    const metrics = new FloodgateMetrics({ rules: ['syn-flood'] });
    metrics.scanned({
      at: 0,
      durationMs: 1,
      table: new SocketTable(),
      counters: {
        SyncookiesSent: 0,
        SyncookiesRecv: 0,
        SyncookiesFailed: 0,
        ListenOverflows: 0,
        ListenDrops: 0,
        TCPReqQFullDrop: 0,
        TCPReqQFullDoCookies: 0,
      },
      attack: false,
    });
    const text = await metrics.exposition();
    // Samples, and families that have none yet (a labelled counter before its first failure).
    const exposed = new Set(
      text
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]),
    );
    for (const m of text.matchAll(/^# TYPE (\S+) (?!histogram)/gm)) exposed.add(m[1]!);
    const queried = new Set(
      exprs.flatMap(({ expr }) => expr.match(/\b(?:floodgate|process|nodejs)_[a-z0-9_]+\b/g) ?? []),
    );
    expect(queried.size).toBeGreaterThan(20);
    const missing = [...queried].filter((name) => !exposed.has(name));
    expect(missing).toEqual([]);
    // Every floodgate metric has a panel.
    const families = new Set(
      [...text.matchAll(/^# TYPE (floodgate_\S+) (\S+)$/gm)].map((m) =>
        m[2] === 'histogram' ? `${m[1]}_bucket` : m[1]!,
      ),
    );
    expect([...families].filter((name) => !queried.has(name))).toEqual([]);
  });
});
