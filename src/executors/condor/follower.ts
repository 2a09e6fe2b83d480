/**
 * Follows one job event log from a byte offset: each `read()` returns the complete events written
 * since the last one and the offset after them. A half-written event at the end stays for the next
 * read; the caller stores the offset with what it did with the events, so a restart resumes there.
 */
import { open } from 'node:fs/promises';
import { parseEvents, type JobEvent } from './eventlog.js';

/** Bytes read at most per call, so one huge backlog is applied (and its offset saved) in pieces. */
const CHUNK = 4 * 1024 * 1024;

export class EventLogFollower {
  constructor(
    readonly file: string,
    public offset: number,
  ) {}

  /**
   * The complete events after `offset`, with the offset after them (not stored: call `advance`
   * once they are applied). A missing file has no events yet; a file shorter than the offset was
   * replaced, which HTCondor never does with a job's own log: reported as an error.
   */
  async read(): Promise<{ events: JobEvent[]; next: number; skipped: string[] }> {
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], next: this.offset, skipped: [] };
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size < this.offset) {
        throw new Error(
          `the event log ${this.file} is ${size} bytes, shorter than the ${this.offset} bytes already read: it was truncated or replaced`,
        );
      }
      if (size === this.offset) return { events: [], next: this.offset, skipped: [] };
      const length = Math.min(size - this.offset, CHUNK);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.offset);
      // Only complete lines are parsed, and a complete line is complete UTF-8: a character cut at
      // the end of the chunk lies in the unparsed tail.
      const { events, consumed, skipped } = parseEvents(buffer.subarray(0, bytesRead).toString('utf8'));
      return { events, next: this.offset + consumed, skipped };
    } finally {
      await handle.close();
    }
  }

  advance(next: number): void {
    this.offset = next;
  }
}
