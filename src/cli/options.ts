// Parsers for flag values, shared by the commands: each refuses bad input with what it expected.
import { UsageError, quoteInput } from '../errors.js';
import { type Bounds, describeDurationBounds, parseBoundedDuration } from '../policy/duration.js';
import { STATES, type SocketState, normalizeState } from '../table/socket-row.js';

export function wholeNumberOption(flag: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
    }
    return value;
  };
}

/** A duration flag held to the same bounds as the policy key it stands for (BOUNDS in duration.ts). */
export function durationOption(flag: string, bounds: Bounds) {
  return (text: string): number => {
    const ms = parseBoundedDuration(text, bounds);
    if (ms === null) {
      throw new UsageError(
        `${flag}: expected a duration ${describeDurationBounds(bounds)}, like 500ms, ` +
          `30s, 10m, 24h or 7d (a bare number is seconds), got ${quoteInput(text)}`,
      );
    }
    return ms;
  };
}

export function choiceOption<const T extends string>(flag: string, choices: readonly T[]) {
  return (text: string): T => {
    if (!(choices as readonly string[]).includes(text)) {
      throw new UsageError(`${flag}: expected one of ${choices.join(' | ')}, got ${JSON.stringify(text)}`);
    }
    return text as T;
  };
}

/** Repeatable and comma-separated: --state SYN_RECV,ESTABLISHED --state TIME_WAIT. */
export function collectStates(text: string, previous: SocketState[] = []): SocketState[] {
  const out = [...previous];
  for (const part of text.split(',')) {
    const state = normalizeState(part.trim());
    if (state === null)
      throw new UsageError(`--state: expected a TCP state (${STATES.join(', ')}), got ${JSON.stringify(part)}`);
    out.push(state);
  }
  return out;
}

export function collectPorts(text: string, previous: number[] = []): number[] {
  const parse = wholeNumberOption('--port', 0, 65535);
  return [...previous, ...text.split(',').map((part) => parse(part.trim()))];
}

export function collect(text: string, previous: string[] = []): string[] {
  return [...previous, text];
}
