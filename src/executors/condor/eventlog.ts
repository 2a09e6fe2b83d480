/**
 * HTCondor's job event log ("user log"), classic text format: each event is a header line
 *
 *   005 (180158.000.000) 03/10 16:40:26 Job terminated.
 *   012 (12345.000.000) 2024-09-15 10:23:45 Job was held.
 *
 * (event number, `(cluster.proc.subproc)`, a date in the old `MM/DD` or the current ISO style, a
 * description), body lines indented with tabs (or spaces, in copies from web pages), and a line
 * `...` that ends it. Read incrementally: `parseEvents` returns the complete events and the byte
 * offset after the last one, so a reader resumes there and a half-written event at the end of the
 * file waits for its `...`.
 */

/**
 * The event numbers cogd acts on, as HTCondor names them (`ULogEventNumber`: ULOG_SUBMIT = 0 …
 * ULOG_JOB_RELEASED = 13). Others (006 image size, 021 remote error, 028 job ad, 040 file
 * transfer…) are parsed and passed over.
 */
export const JobEventCode = {
  Submit: 0,
  Execute: 1,
  Evicted: 4,
  Terminated: 5,
  ShadowException: 7,
  Aborted: 9,
  Held: 12,
  Released: 13,
} as const;
// A const object rather than a TypeScript enum: event numbers read from a log are plain numbers,
// and an unknown one must stay comparable with these without a cast.
export type JobEventCode = (typeof JobEventCode)[keyof typeof JobEventCode];

export interface JobEvent {
  /** Event number (a `JobEventCode` where cogd acts on it; any other number is kept as written). */
  code: number;
  cluster: number;
  proc: number;
  subproc: number;
  /** As written: `MM/DD hh:mm:ss` or `YYYY-MM-DD hh:mm:ss[.fff]`. */
  time: string;
  /** The header's description, e.g. "Job was held." */
  description: string;
  /** Body lines, indentation removed. */
  body: string[];
  /** What the event means for a job (decoded from the body where it matters). */
  termination?: { normal: true; returnValue: number } | { normal: false; signal: number };
  /** The hold reason (012), or the shadow exception / abort message (007, 009). */
  reason?: string;
  holdCode?: number;
  holdSubcode?: number;
}

export interface ParseResult {
  events: JobEvent[];
  /** Bytes of the input consumed: everything up to and including the last complete event. */
  consumed: number;
  /** Lines that belong to no event (skipped, so one bad line never blocks the rest). */
  skipped: string[];
}

const HEADER =
  /^(\d{3}) \((-?\d+)\.(-?\d+)\.(-?\d+)\) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?|\d{2}\/\d{2} \d{2}:\d{2}:\d{2}) ?(.*)$/;

function decode(event: JobEvent): void {
  const first = event.body[0];
  switch (event.code) {
    case JobEventCode.Terminated: {
      for (const line of event.body) {
        const normal = /^\(1\) Normal termination \(return value (-?\d+)\)/.exec(line);
        if (normal !== null) {
          event.termination = { normal: true, returnValue: Number(normal[1]) };
          break;
        }
        const abnormal = /^\(0\) Abnormal termination \(signal (\d+)\)/.exec(line);
        if (abnormal !== null) {
          event.termination = { normal: false, signal: Number(abnormal[1]) };
          break;
        }
      }
      break;
    }
    case JobEventCode.Held: {
      const code = event.body.map((line) => /^Code (-?\d+) Subcode (-?\d+)/.exec(line)).find((m) => m !== null);
      if (code != null) {
        event.holdCode = Number(code[1]);
        event.holdSubcode = Number(code[2]);
      }
      const reason = event.body.find((line) => !/^Code -?\d+ Subcode -?\d+/.test(line));
      if (reason !== undefined) event.reason = reason;
      break;
    }
    case JobEventCode.ShadowException:
    case JobEventCode.Aborted:
    case JobEventCode.Released:
      // The first body line says why; some writers leave the body empty and only the header speaks.
      event.reason = first ?? event.description;
      break;
    default:
      break;
  }
}

/**
 * Parses the events in `text`. Bytes are counted in UTF-8, so `consumed` can be added to a file
 * offset directly.
 */
export function parseEvents(text: string): ParseResult {
  const events: JobEvent[] = [];
  const skipped: string[] = [];
  let consumed = 0;
  let bytes = 0; // UTF-8 bytes of the lines read so far
  let position = 0;
  let current: JobEvent | undefined;
  while (position < text.length) {
    const newline = text.indexOf('\n', position);
    if (newline === -1) break; // a line still being written
    const raw = text.slice(position, newline);
    position = newline + 1;
    bytes += Buffer.byteLength(raw) + 1;
    const line = raw.replace(/\r$/, '');
    if (current === undefined) {
      const header = HEADER.exec(line.trimStart());
      if (header === null) {
        if (line.trim() !== '') skipped.push(line);
        consumed = bytes;
        continue;
      }
      current = {
        code: Number(header[1]),
        cluster: Number(header[2]),
        proc: Number(header[3]),
        subproc: Number(header[4]),
        time: header[5]!,
        description: header[6]!.trim(),
        body: [],
      };
      continue;
    }
    if (line.trim() === '...') {
      decode(current);
      events.push(current);
      current = undefined;
      consumed = bytes;
      continue;
    }
    current.body.push(line.trim());
  }
  return { events, consumed, skipped };
}
