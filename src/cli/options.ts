// Parsers for flag values, shared by the commands: each refuses bad input with what it expected.
import { UsageError } from '../errors.js';
import { parseDuration } from '../policy/duration.js';
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

export function durationOption(flag: string, minMs = 0) {
  return (text: string): number => {
    const ms = parseDuration(text);
    if (ms === null || ms < minMs) {
      throw new UsageError(`${flag}: expected a duration${minMs > 0 ? ` of at least ${minMs / 1000}s` : ''} like 500ms, 30s, 10m or 24h, got ${JSON.stringify(text)}`);
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
    if (state === null) throw new UsageError(`--state: expected a TCP state (${STATES.join(', ')}), got ${JSON.stringify(part)}`);
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
