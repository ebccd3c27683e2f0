// The kernel's SYN-flood counters (/proc/net/netstat TcpExt) captured before and after the cookies flood.
import { describe, expect, it } from 'vitest';
import {
  FLOOD_COUNTERS,
  type FloodCounters,
  counterRates,
  parseKernelCounters,
} from '../../src/table/kernel-counters.js';
import { fixtureText } from './fixture-tables.js';

const before = parseKernelCounters(fixtureText('cookies', 'netstat-counters-before.txt'));
const after = parseKernelCounters(fixtureText('cookies', 'netstat-counters-after.txt'));
const zero = Object.fromEntries(FLOOD_COUNTERS.map((name) => [name, 0])) as FloodCounters;

describe('parseKernelCounters', () => {
  it('reads no SYN cookies before the flood', () => {
    expect(before).toEqual(zero);
  });

  it('reads the 135 SYN cookies the kernel sent for the SYNs its full queue could not hold', () => {
    // 200 sources, 65 SYN_RECV kept: 135 answered with cookies.
    expect(after).toEqual({ ...zero, SyncookiesSent: 135, TCPReqQFullDoCookies: 135 });
  });

  it('reads the TcpExt pair only, not the MPTcpExt or IpExt lines next to it', () => {
    const text = fixtureText('cookies', 'netstat-counters-after.txt');
    expect(text).toMatch(/^MPTcpExt:/m);
    const tcpExtFirst = text
      .split('\n')
      .filter((line) => !line.startsWith('TcpExt:'))
      .join('\n');
    expect(parseKernelCounters(tcpExtFirst)).toEqual(zero);
  });

  it('reads a counter the kernel lacks as 0, and finds the others wherever their column is', () => {
    const text = 'TcpExt: ListenDrops SyncookiesSent Unrelated\nTcpExt: 7 42 99\n';
    expect(parseKernelCounters(text)).toEqual({ ...zero, ListenDrops: 7, SyncookiesSent: 42 });
    expect(parseKernelCounters('')).toEqual(zero);
  });
});

describe('counterRates', () => {
  it('turns the before/after difference into a rate per second', () => {
    const rates = counterRates(before, after, 5);
    expect(rates.SyncookiesSent).toBe(27);
    expect(rates.TCPReqQFullDoCookies).toBe(27);
    expect(rates.ListenDrops).toBe(0);
    expect(counterRates(before, after, 0.5).SyncookiesSent).toBe(270);
  });

  it('never reports a negative rate when counters went back (a reboot, another namespace)', () => {
    expect(counterRates(after, before, 5)).toEqual(zero);
  });

  it('reports 0 when no time passed instead of dividing by zero', () => {
    expect(counterRates(before, after, 0)).toEqual(zero);
  });
});
