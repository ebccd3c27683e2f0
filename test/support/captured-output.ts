// What a command run in-process writes: process.stdout and process.stderr captured for each test of
// the file, restored after it, with process.exitCode reset.
import { afterEach, beforeEach, vi } from 'vitest';

export interface CapturedOutput {
  /** What the test has written to standard output so far. */
  stdout: string;
  stderr: string;
}

/** Call at a test file's top level: registers the hooks, and returns what each test wrote. */
export function captureOutput(): CapturedOutput {
  const out: CapturedOutput = { stdout: '', stderr: '' };
  beforeEach(() => {
    out.stdout = '';
    out.stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.stdout += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      out.stderr += String(chunk);
      return true;
    });
  });
  afterEach(() => {
    process.exitCode = undefined;
    vi.restoreAllMocks();
  });
  return out;
}
