/**
 * `cogd logs RUN [JOB] [-f]`: prints a run's logs (`run.log`, `post.out`, `post.err`, and its
 * --on-run-end command's `hook.out`, `hook.err`) or one job's
 * (`<name>.log`, `.out`, `.err`); `-f` keeps printing what is appended until the run is done or
 * Ctrl-C. JOB is a manifest line number, a job id (`12.5`), an image key or a log name.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { readOptions, resolveHome } from '../../config/index.js';
import { parseRun, parseTarget } from '../../manifest/targets.js';
import { homePaths } from '../../daemon/home.js';
import { CogdError, UsageError } from '../../errors.js';
import { StateDB } from '../../state/db.js';

async function readFrom(file: string, offset: number): Promise<{ text: string; size: number }> {
  const { size } = await stat(file);
  if (size <= offset) return { text: '', size };
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(size - offset);
    await handle.read(buffer, 0, buffer.length, offset);
    return { text: buffer.toString('utf8'), size };
  } finally {
    await handle.close();
  }
}

/** The manifest line a job id names (`12.5` → 5), when it is a job of this run. */
function jobLineOf(text: string, runId: number): number | undefined {
  if (!/^\d+\.\d+$/.test(text)) return undefined;
  const target = parseTarget(text);
  if (target.kind !== 'job') return undefined;
  if (target.run !== runId)
    throw new UsageError(`job ${text} is not in run ${runId}`, `use \`cogd logs ${target.run} ${text}\``);
  return target.line;
}

export async function logsCommand(
  runArg: string,
  jobArg: string | undefined,
  flags: Record<string, unknown>,
): Promise<number> {
  const options = readOptions('logs', flags).command;
  const home = resolveHome(options.home);
  const runId = parseRun(runArg);
  const { db: dbFile } = homePaths(home);
  if (!existsSync(dbFile)) throw new CogdError('NoState', `nothing has run on ${home}`);
  const db = new StateDB(dbFile);
  try {
    const run = db.run(runId);
    if (run === undefined)
      throw new CogdError('UnknownRun', `there is no run ${runArg} on ${home}`, { hint: 'see `cogd status`' });
    let names: string[];
    if (jobArg === undefined) {
      names = ['run.log', 'post.out', 'post.err', 'hook.out', 'hook.err'];
    } else {
      // A manifest line (5), a job id of this run (12.5), an image key or a log name.
      const line = /^\d+$/.test(jobArg) ? Number(jobArg) : jobLineOf(jobArg, run.id);
      const job =
        line !== undefined
          ? db.jobByLine(run.id, line)
          : db.jobs(run.id).find((j) => j.imageKey === jobArg || j.logName === jobArg);
      if (job === undefined)
        throw new CogdError('UnknownJob', `run ${run.id} has no job ${jobArg}`, {
          hint: `see \`cogd status --jobs ${run.id}\``,
        });
      if (job.logName === null) {
        process.stdout.write(`line ${job.line} was rejected before it ran: ${job.error ?? ''}\n`);
        return 0;
      }
      names = ['log', 'out', 'err'].map((ext) => `${job.logName}.${ext}`);
    }
    const offsets = new Map<string, number>();
    let lastShown = '';
    const show = async (): Promise<void> => {
      for (const name of names) {
        const file = path.join(run.runDir, name);
        if (!existsSync(file)) continue;
        const { text, size } = await readFrom(file, offsets.get(name) ?? 0);
        offsets.set(name, size);
        if (text === '') continue;
        if (lastShown !== name)
          process.stdout.write(
            `${lastShown === '' ? '' : '\n'}==> ${path.join(path.relative(home, run.runDir), name)} <==\n`,
          );
        lastShown = name;
        process.stdout.write(text);
      }
    };
    await show();
    if (lastShown === '' && options.follow !== true) process.stdout.write(`no logs yet in ${run.runDir}\n`);
    if (options.follow === true) {
      const interrupt = new AbortController();
      process.once('SIGINT', () => interrupt.abort());
      while (!interrupt.signal.aborted && db.run(run.id)?.state !== 'done') {
        await sleep(500, undefined, { signal: interrupt.signal }).catch(() => undefined);
        await show();
      }
      await show();
    }
    return 0;
  } finally {
    db.close();
  }
}
