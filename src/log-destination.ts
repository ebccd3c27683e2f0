// Where the JSON log lines go: a file descriptor, written in batches, so that a burst of events (10k
// bans from one `ban --from-file`) costs a few write(2) calls instead of one per line. Lines reach
// the descriptor as soon as the code running now (and the promise jobs it queued) is done, sooner
// when the buffer is full, on flush(), and at exit. The enforcer flushes before it saves the ban
// store, so a ban is never in the store or the firewall without its audit line already written.
import { writeSync } from 'node:fs';

export interface LogDestinationOptions {
  /** Bytes that may wait; a fuller buffer is written at once. @default 256 KiB */
  readonly bufferSize?: number;
  /** fs.writeSync; a test can count the calls. @default fs.writeSync */
  readonly write?: (fd: number, data: Uint8Array, offset: number, length: number) => number;
}

// Every destination made, to be flushed at exit (a process makes one; tests a few).
const live = new Set<LogDestination>();
let exitHooked = false;

/** write(2) on a non-blocking pipe (stdout to a slow reader) can refuse for a moment: wait, retry. */
const pause = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export class LogDestination {
  // Lines are encoded into the buffer as they come: holding them as strings until the flush made
  // each one survive a young-generation GC, which cost more than the write(2) calls it saved.
  private readonly buffer: Buffer;
  private used = 0;
  private scheduled = false;
  /** The reader is gone (EPIPE): as pino's own destination does, stop writing. */
  private broken = false;
  private readonly writeTo: (fd: number, data: Uint8Array, offset: number, length: number) => number;

  constructor(
    readonly fd: number,
    options: LogDestinationOptions = {},
  ) {
    const { bufferSize = 256 * 1024, write = writeSync } = options;
    if (!Number.isInteger(bufferSize) || bufferSize < 1)
      throw new Error(`Expected \`bufferSize\` to be a whole number >= 1, got \`${bufferSize}\``);
    this.buffer = Buffer.allocUnsafe(bufferSize);
    this.writeTo = write;
    live.add(this);
    if (!exitHooked) {
      exitHooked = true;
      // Also after an uncaught exception: node emits 'exit' before it ends.
      process.on('exit', () => {
        for (const destination of live) {
          try {
            destination.flushSync();
          } catch {
            // nowhere left to report it
          }
        }
      });
    }
  }

  /** pino calls this with one complete line. */
  write(line: string): boolean {
    if (this.broken) return true;
    // At most 3 bytes per UTF-16 unit: check cheaply, count exactly only near the end.
    if (this.used + line.length * 3 > this.buffer.length && this.used + Buffer.byteLength(line) > this.buffer.length) {
      this.flushSync();
      if (Buffer.byteLength(line) > this.buffer.length) {
        this.writeAll(Buffer.from(line));
        return true;
      }
    }
    this.used += this.buffer.write(line, this.used);
    if (!this.scheduled) {
      this.scheduled = true;
      // Not setImmediate: that would hold the lines back while the event loop works through I/O.
      process.nextTick(() => {
        this.scheduled = false;
        this.flushSync();
      });
    }
    return true;
  }

  /** pino's logger.flush() ends here; synchronous, so the lines are out when it returns. */
  flush(callback?: (error?: Error) => void): void {
    try {
      this.flushSync();
    } catch (error) {
      if (callback === undefined) throw error;
      callback(error as Error);
      return;
    }
    callback?.();
  }

  flushSync(): void {
    if (this.used === 0) return;
    const used = this.used;
    this.used = 0;
    this.writeAll(this.buffer.subarray(0, used));
  }

  private writeAll(data: Uint8Array): void {
    for (let offset = 0; offset < data.length && !this.broken; ) {
      try {
        offset += this.writeTo(this.fd, data, offset, data.length - offset);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') this.broken = true;
        else if (code === 'EAGAIN') pause(10);
        else throw error;
      }
    }
  }
}
