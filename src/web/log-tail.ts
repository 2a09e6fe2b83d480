/**
 * The tail of a job's `.log` / `.err`, for the status page. The file is found from the state DB —
 * the run's directory and the job's log name — never from a path in the URL, and it must lie in the
 * home's `logs/` once symlinks are resolved.
 */
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';

/** How much of the end of a log the page shows at most. @defaultValue 64 KiB */
export const TAIL_BYTES = 64 * 1024;

export interface LogTail {
  /** The file's name (`img.log`), never its path. */
  name: string;
  /** Its last bytes as text; empty when the file does not exist (yet). */
  text: string;
  /** Whether the text is cut at its start. */
  truncated: boolean;
  size: number;
}

/** Log names are made by `logStem` (letters, digits, `._-`); anything else is refused here too. */
const SAFE_NAME = /^[A-Za-z0-9._-]{1,250}$/;

const within = (child: string, parent: string): boolean => child.startsWith(`${parent}${path.sep}`);

/**
 * The last `bytes` of `<runDir>/<logName>.<ext>`, or undefined when the name is not a log name or
 * the file lies outside `logsDir`.
 */
export async function tailOf(
  logsDir: string,
  runDir: string,
  logName: string,
  ext: 'log' | 'err' | 'out',
  bytes = TAIL_BYTES,
): Promise<LogTail | undefined> {
  const name = `${logName}.${ext}`;
  if (!SAFE_NAME.test(name) || name.startsWith('.')) return undefined;
  let logs: string;
  try {
    logs = await realpath(logsDir);
  } catch {
    return undefined;
  }
  const file = path.join(runDir, name);
  let real: string;
  try {
    real = await realpath(file);
  } catch {
    // Not written yet (a job that has not started): the page says so, if its directory is in logs/.
    return within(path.resolve(runDir), logs) || within(path.resolve(runDir), path.resolve(logsDir))
      ? { name, text: '', truncated: false, size: 0 }
      : undefined;
  }
  if (!within(real, logs)) return undefined;
  const handle = await open(real, 'r');
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    let text = buffer.toString('utf8');
    // Cut at a line start, so the first line shown is whole.
    if (start > 0 && text.includes('\n')) text = text.slice(text.indexOf('\n') + 1);
    return { name, text, truncated: start > 0, size };
  } finally {
    await handle.close();
  }
}
