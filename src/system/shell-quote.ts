// A command line as text that a POSIX shell reads back as the same argv: logged commands can be
// pasted into a shell as they are (`ss -K … ( dst [2001:db8::7] )` unquoted is a syntax error).

// Characters no POSIX shell treats specially anywhere in a word.
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(word: string): string {
  if (SAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
