/** `cogd poll`: one poll now; with `--wait`, until every run it started has finished its post step. */
import path from 'node:path';
import { readRunRequest } from '../../config/index.js';
import { describeError, UsageError } from '../../errors.js';
import type { RunRecord, StateDB } from '../../state/db.js';
import { openContext, type Context } from '../context.js';
import { consoleLevel } from '../output.js';

export type PollFlags = Record<string, unknown>;

/** One line per run: manifest, rows, processed, failed, run directory. */
export function summaryLine(run: RunRecord, home: string): string {
  const dir = path.relative(home, run.runDir) || run.runDir;
  const where = `s3://${run.inputBucket}/${run.manifestKey}`;
  if (run.state !== 'done') {
    const why = run.postError !== null ? `post failed: ${run.postError}` : `${run.state}, not finished`;
    return `run ${run.id} ${where}: ${why}; logs in ${dir}`;
  }
  if (run.error !== null) return `run ${run.id} ${where}: manifest rejected: ${run.error}; logs in ${dir}`;
  return `run ${run.id} ${where}: ${run.rowsTotal ?? 0} rows, ${run.processed ?? 0} processed, ${run.failed ?? 0} failed; logs in ${dir}`;
}

/** What a run's end did: one line for its hook and one for its notification, where it had them. */
export function runEndLines(run: RunRecord, db: StateDB): string[] {
  const end = db.runEnd(run.id);
  if (end === undefined) return [];
  const lines: string[] = [];
  if (end.hookState !== null)
    lines.push(
      `run ${run.id}: --on-run-end ${end.hookState === 'pending' ? 'still to run (the next start runs it)' : `${end.hookState}: ${end.hookResult ?? ''}`}`,
    );
  if (end.notifyState !== null)
    lines.push(
      `run ${run.id}: --notify-url ${end.notifyState === 'pending' ? 'still to send (the next start sends it)' : `${end.notifyState}: ${end.notifyResult ?? ''}`}`,
    );
  return lines;
}

/** Exit code for finished runs: 0 when every row of every manifest was processed. */
export function exitCodeFor(runs: RunRecord[]): number {
  return runs.every((run) => run.state === 'done' && run.error === null && (run.failed ?? 0) === 0) ? 0 : 1;
}

/** Progress on stderr while waiting: a line every few seconds while something changes. */
function reportProgress(ctx: Context, runIds: number[]): () => void {
  const interval = process.stderr.isTTY ? 2000 : 15000;
  let last = '';
  const timer = setInterval(() => {
    const parts = runIds.map((id) => {
      const c = ctx.db.jobCounts(id);
      const total = c.idle + c.running + c.converted + c.failed + c.removed;
      return `run ${id}: ${c.converted + c.failed + c.removed}/${total} done (${c.running} running, ${c.failed} failed)`;
    });
    const line = parts.join('; ');
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
  }, interval);
  timer.unref();
  return () => clearInterval(timer);
}

export async function pollCommand(flags: PollFlags): Promise<number> {
  const request = readRunRequest('poll', flags);
  if (request.given.command.json === true)
    throw new UsageError(
      '--json goes with --dry-run',
      'a poll prints one line per run; add --dry-run for its JSON plan',
    );
  const wait = request.given.command.wait === true;
  // `cogd rm` wakes whoever works on the home with SIGUSR2 (from the moment this process holds the
  // home); SIGHUP, a daemon's reload, means nothing to a poll. Neither may end it.
  let context: Context | undefined;
  const onRemoval = (): void => context?.daemon.applyRequests();
  const ignore = (): void => undefined;
  process.on('SIGUSR2', onRemoval);
  process.on('SIGHUP', ignore);
  let ctx: Context;
  try {
    ctx = context = await openContext(request, consoleLevel(request.given.command));
  } catch (error) {
    process.off('SIGUSR2', onRemoval);
    process.off('SIGHUP', ignore);
    throw error;
  }
  for (const line of ctx.changes) process.stdout.write(`${line}\n`);
  // Set from a signal handler, read after awaits: an object, so no reader takes it for a constant.
  const signalled = { interrupted: false };
  const onSignal = (): void => {
    signalled.interrupted = true;
    process.stderr.write('cogd: interrupted; stopping jobs in flight (they run again on the next poll or start)\n');
    ctx
      .close()
      .catch((error: unknown) => process.stderr.write(`cogd: while stopping: ${describeError(error)}\n`))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const hold = ctx.watch.hold;
    if (hold !== null) {
      process.stdout.write(
        `watch w${ctx.watch.id} is held by ${hold.by} since ${hold.since}: ${hold.reason}; not polling (cogd release w${ctx.watch.id})\n`,
      );
    }
    const runIds = await ctx.daemon.poll(ctx.watch, { planOnly: !wait });
    ctx.daemon.applyRequests();
    if (runIds.length === 0) {
      if (hold !== null) return 0;
      process.stdout.write(`no new manifests matching "${ctx.watch.pattern}" in s3://${ctx.watch.inputBucket}\n`);
      if (wait) await ctx.daemon.runEndsSettled(); // hooks and notifications a previous process left pending
      return signalled.interrupted ? 130 : 0;
    }
    if (!wait) {
      for (const run of await ctx.daemon.settled(runIds)) {
        process.stdout.write(
          `run ${run.id} s3://${run.inputBucket}/${run.manifestKey}: claimed, ${run.rowsTotal ?? 0} rows planned; logs in ${path.relative(request.home, run.runDir)}\n`,
        );
      }
      process.stdout.write('the runs continue under `cogd start`, or run `cogd poll --wait` to see them through now\n');
      return 0;
    }
    const stop = reportProgress(ctx, runIds);
    const runs = await ctx.daemon.settled(runIds);
    stop();
    if (signalled.interrupted) return 130;
    // Their hooks and notifications (and those a previous process left pending) end before this
    // process does; they never change a run's outcome, nor this exit code.
    await ctx.daemon.runEndsSettled(); // a signal meanwhile ends this process (onSignal)
    for (const run of runs) {
      process.stdout.write(`${summaryLine(run, request.home)}\n`);
      for (const line of runEndLines(run, ctx.db)) process.stdout.write(`${line}\n`);
    }
    return exitCodeFor(runs);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGUSR2', onRemoval);
    process.off('SIGHUP', ignore);
    if (!signalled.interrupted) await ctx.close();
  }
}
