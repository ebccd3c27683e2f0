// The ban history: the operator's record of past bans and unbans, capped, and as careful with its
// file as the other state files.
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HistoryWriter, appendHistory, historyEntry, historyFile, readHistory } from '../../src/bans/ban-history.js';
import type { LoggedEvent } from '../../src/log-events.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'floodgate-history-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const ban = (target: string): LoggedEvent => ({
  level: 'info',
  msg: `ban ${target}`,
  fields: {
    event: 'ban',
    target,
    rule: 'syn-flood',
    count: 42,
    reason: undefined,
    ttl: '10m',
    expiresAt: '2026-12-01T12:10:00.000Z',
    dryRun: false,
  },
});

describe('ban history', () => {
  it('keeps bans, unbans and expiries with their reasons, and nothing else', () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    expect(historyEntry(ban('192.0.2.7'), now)).toEqual({
      at: '2026-12-01T12:00:00.000Z',
      event: 'ban',
      target: '192.0.2.7',
      rule: 'syn-flood',
      count: 42,
      reason: null,
      ttl: '10m',
      expiresAt: '2026-12-01T12:10:00.000Z',
      dryRun: false,
    });
    expect(
      historyEntry(
        {
          level: 'info',
          msg: '',
          fields: {
            event: 'unban',
            target: '192.0.2.7',
            rule: 'manual',
            graceUntil: '2026-12-01T13:00:00.000Z',
            dryRun: true,
          },
        },
        now,
      ),
    ).toMatchObject({ event: 'unban', graceUntil: '2026-12-01T13:00:00.000Z', dryRun: true });
    expect(historyEntry({ level: 'info', msg: '', fields: { event: 'scan', sockets: 3 } }, now)).toBeNull();
    expect(historyEntry({ level: 'warn', msg: '', fields: { event: 'refused', target: '192.0.2.7' } }, now)).toBeNull();
  });

  it('appends to a file it creates 0600, and reads it back oldest first', () => {
    appendHistory(dir, [historyEntry(ban('192.0.2.1'), 1)!]);
    appendHistory(dir, [historyEntry(ban('192.0.2.2'), 2)!]);
    expect(readHistory(dir).map((e) => e.target)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(readFileSync(historyFile(dir), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('stays bounded: past twice the cap, only the last entries are kept', () => {
    const entries = Array.from({ length: 250 }, (_, i) => historyEntry(ban(`198.51.100.${i % 250}`), i)!);
    for (let i = 0; i < 5; i++) appendHistory(dir, entries, 100);
    const kept = readHistory(dir);
    expect(kept.length).toBeLessThanOrEqual(200);
    expect(kept.length).toBeGreaterThanOrEqual(100);
    expect(kept.at(-1)!.target).toBe('198.51.100.249');
  });

  it('never follows a symlink planted under its name', () => {
    const elsewhere = join(dir, 'elsewhere');
    writeFileSync(elsewhere, 'untouched\n');
    symlinkSync(elsewhere, historyFile(dir));
    expect(() => appendHistory(dir, [historyEntry(ban('192.0.2.1'), 1)!])).toThrow(/symbolic link/);
    expect(readFileSync(elsewhere, 'utf8')).toBe('untouched\n');
  });

  it('refuses a history file others may write', () => {
    writeFileSync(historyFile(dir), '');
    chmodSync(historyFile(dir), 0o666);
    expect(() => appendHistory(dir, [historyEntry(ban('192.0.2.1'), 1)!])).toThrow(
      /writable by its group or by others/,
    );
  });

  it('skips a torn line', () => {
    writeFileSync(historyFile(dir), `${JSON.stringify(historyEntry(ban('192.0.2.1'), 1))}\n{"event":"ban","tar`, {
      mode: 0o600,
    });
    expect(readHistory(dir).map((e) => e.target)).toEqual(['192.0.2.1']);
  });

  it('writes a burst of bans from one tick in one go, and reports a failure instead of throwing', async () => {
    const errors: Error[] = [];
    const writer = new HistoryWriter(dir, (error) => errors.push(error));
    for (let i = 0; i < 10_000; i++) writer.take(ban(`198.18.${i >> 8}.${i & 255}`));
    await new Promise((resolve) => setImmediate(resolve));
    expect(readHistory(dir)).toHaveLength(2000);
    const broken = new HistoryWriter(join(dir, 'missing'), (error) => errors.push(error));
    broken.take(ban('192.0.2.1'));
    broken.flush();
    expect(errors).toHaveLength(1);
  });
});
