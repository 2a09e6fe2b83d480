/**
 * Logging. Structured events with stable keys (`Run:Claimed`, `Job:Failed`) and a context object:
 * - the daemon log: `<home>/logs/cogd.log` (JSON lines) plus stderr for people;
 * - a run log: `logs/run-<TS>/run.log`, the same events restricted to that run;
 * - per image: `<name>.log` (what cogd did), `<name>.out` / `<name>.err` (what GDAL printed);
 * - the post step: `post.out` / `post.err`.
 */
import { appendFile } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';

/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment --
   winston's transports are typed against its own copy of winston-transport's class; they are those
   instances, made by winston's own constructors. */

export type Level = 'error' | 'warn' | 'info' | 'debug';
export type Context = Record<string, unknown>;

export interface Log {
  error(event: string, context?: Context): void;
  warn(event: string, context?: Context): void;
  info(event: string, context?: Context): void;
  debug(event: string, context?: Context): void;
  /** A logger that adds `context` to every event. */
  child(context: Context): Log;
  /** A logger that also writes to `file` (JSON lines). */
  withFile(file: string): Log;
  close(): Promise<void>;
}

const human = winston.format.printf((entry) => {
  const { level, message, timestamp, ...rest } = entry;
  const extra = Object.entries(rest)
    .filter(([key]) => typeof key === 'string')
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${String(timestamp)} ${level} ${String(message)}${extra === '' ? '' : ` ${extra}`}`;
});

/** Failed jobs of one run shown on stderr; the files (`cogd.log`, the run's `run.log`) keep every one. */
export const CONSOLE_FAILURES_PER_RUN = 20;

/**
 * Lets the first `limit` `Job:Failed` events of each run through and turns the next into one line
 * saying where the rest are (a manifest of 100,000 missing images would print 100,000 warnings);
 * drops the others. Counts are kept for the last 1,000 runs with failures (run ids are not reused).
 */
export function capFailures(limit = CONSOLE_FAILURES_PER_RUN): winston.Logform.Format {
  const shown = new Map<number | string, number>();
  return winston.format((entry) => {
    const run = entry['run'];
    if ((typeof run !== 'number' && typeof run !== 'string') || entry.message !== 'Job:Failed') return entry;
    const count = (shown.get(run) ?? 0) + 1;
    shown.set(run, count);
    if (shown.size > 1000) shown.delete(shown.keys().next().value!);
    if (count <= limit) return entry;
    if (count > limit + 1) return false;
    // The files still get this failure whole: stderr gets a summary in its place, with winston's
    // symbol keys (the level it filters on) carried over.
    const summary: winston.Logform.TransformableInfo = {
      level: entry.level,
      message: 'Run:MoreFailed',
      run,
      hint:
        `more jobs of run ${run} failed than the ${limit} shown here: ` +
        `cogd status --jobs ${run} --state failed lists them; cogd.log and the run's run.log have each one`,
    };
    for (const symbol of Object.getOwnPropertySymbols(entry)) summary[symbol] = entry[symbol];
    return summary;
  })();
}

class WinstonLog implements Log {
  constructor(
    private readonly loggers: winston.Logger[],
    private readonly context: Context,
    private readonly owned: winston.Logger[],
  ) {}

  private write(level: Level, event: string, context?: Context): void {
    for (const logger of this.loggers) logger.log(level, event, { ...this.context, ...context });
  }

  error(event: string, context?: Context): void {
    this.write('error', event, context);
  }
  warn(event: string, context?: Context): void {
    this.write('warn', event, context);
  }
  info(event: string, context?: Context): void {
    this.write('info', event, context);
  }
  debug(event: string, context?: Context): void {
    this.write('debug', event, context);
  }

  child(context: Context): Log {
    return new WinstonLog(this.loggers, { ...this.context, ...context }, []);
  }

  withFile(file: string): Log {
    const fileLogger = winston.createLogger({
      level: 'debug',
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      transports: [new winston.transports.File({ filename: file })],
    });
    return new WinstonLog([...this.loggers, fileLogger], this.context, [fileLogger]);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.owned.map(
        (logger) =>
          new Promise<void>((resolve) => {
            logger.on('finish', () => resolve());
            logger.end();
          }),
      ),
    );
  }
}

export interface LogOptions {
  /** Where `cogd.log` goes; no file when undefined. */
  logDir?: string;
  /** What reaches stderr. @defaultValue `warn` */
  consoleLevel?: Level | 'silent';
}

export function createLog(options: LogOptions): Log {
  const transports: winston.transport[] = [];
  if (options.consoleLevel !== 'silent') {
    transports.push(
      new winston.transports.Console({
        level: options.consoleLevel ?? 'warn',
        stderrLevels: ['error', 'warn', 'info', 'debug'],
        format: winston.format.combine(capFailures(), winston.format.timestamp({ format: 'HH:mm:ss' }), human),
      }),
    );
  }
  if (options.logDir !== undefined) {
    transports.push(
      new winston.transports.File({
        level: 'debug',
        filename: path.join(options.logDir, 'cogd.log'),
        format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      }),
    );
  }
  if (transports.length === 0) transports.push(new winston.transports.Console({ silent: true }));
  const logger = winston.createLogger({ level: 'debug', transports });
  return new WinstonLog([logger], {}, [logger]);
}

/**
 * Appends `text` to `file`; never fails (a log line that cannot be written is not the job's failure).
 * fs's callback form, not fs/promises: a FileHandle and its promises cost ~87 µs of CPU per new
 * file against ~61 µs (measured, README Big runs), and a 100,000-row run opens 100,000 logs.
 */
function appendText(file: string, text: string): Promise<void> {
  return new Promise((resolve) => appendFile(file, text, () => resolve()));
}

/**
 * The three files of one image (`<name>.log`, `.out`, `.err`) or of the post step (`post.out`,
 * `post.err`). Writes are appended in order, the lines of up to a quarter second together (a job
 * that fails at once writes its log in one append, not one per line); `flush()` writes them now
 * and waits.
 */
export class StepFiles {
  /** How long a line may wait for others before it is written. */
  static readonly GATHER_MS = 250;
  private pending: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    readonly name: string,
  ) {}

  /** `<dir>/<name>.<ext>` */
  path(ext: string): string {
    return path.join(this.dir, `${this.name}.${ext}`);
  }

  /** Text not yet written, per file; one write takes all of it (lines logged together, one append). */
  private readonly queued = new Map<string, string>();

  private append(ext: string, text: string): void {
    const file = this.path(ext);
    const before = this.queued.get(file);
    this.queued.set(file, (before ?? '') + text);
    this.timer ??= setTimeout(() => this.write(), StepFiles.GATHER_MS);
  }

  /** Appends what is queued, after the writes before it. */
  private write(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = this.pending.then(() => this.drain()).catch(() => undefined);
  }

  private async drain(): Promise<void> {
    const texts = [...this.queued];
    this.queued.clear();
    for (const [file, text] of texts) await appendText(file, text);
  }

  /** A timestamped line in `<name>.log`. */
  log(line: string): void {
    this.append('log', `${new Date().toISOString()} ${line}\n`);
  }

  out(text: string): void {
    if (text !== '') this.append('out', text.endsWith('\n') ? text : `${text}\n`);
  }

  err(text: string): void {
    if (text !== '') this.append('err', text.endsWith('\n') ? text : `${text}\n`);
  }

  async flush(): Promise<void> {
    if (this.timer !== undefined) this.write();
    await this.pending;
  }

  static async create(dir: string, name: string): Promise<StepFiles> {
    await mkdir(dir, { recursive: true });
    return new StepFiles(dir, name);
  }
}
