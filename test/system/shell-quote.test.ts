// Logged commands paste into a shell as they are: bash reads the quoted text back as the same argv.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { killCommands } from '../../src/hooks/kill-connections.js';
import { parseCidr } from '../../src/net/ip.js';
import { shellCommand } from '../../src/system/shell-quote.js';

/** What bash makes of `text` as a command line: its words, one per line of printf. */
function bashWords(text: string): string[] {
  const out = execFileSync('bash', ['-c', `printf '%s\\0' ${text}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('shellCommand', () => {
  it('leaves plain words alone', () => {
    expect(
      shellCommand([
        'iptables',
        '-w',
        '-A',
        'INPUT',
        '-s',
        '198.51.100.7/32',
        '-m',
        'comment',
        '--comment',
        'floodgate',
        '-j',
        'DROP',
      ]),
    ).toBe('iptables -w -A INPUT -s 198.51.100.7/32 -m comment --comment floodgate -j DROP');
  });

  it('quotes the ss -K filter so that bash reads back the same argv', () => {
    const [argv] = killCommands([
      parseCidr('198.51.100.66')!,
      parseCidr('2001:db8::7')!,
      parseCidr('2001:db8:1::/64')!,
    ]);
    const text = shellCommand(argv!);
    expect(text).toContain("'(' dst 198.51.100.66 or dst '[::ffff:198.51.100.66]'");
    expect(bashWords(text)).toEqual(argv);
  });

  it('survives quotes, spaces, globs, $ and an empty word', () => {
    const argv = ['sh', '-c', "echo 'it''s' $HOME *", '', '~', '#x', 'a;b', '\n'];
    expect(bashWords(shellCommand(argv))).toEqual(argv);
  });
});
