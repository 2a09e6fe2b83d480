/**
 * `cogd status`: what the home's watches and runs are doing, like condor_q. Reads the state DB
 * only (WAL: never blocks the daemon), so it works whether or not the daemon runs.
 * `--watch` (or `cogd watch`) redraws one progress bar per run until they finish or Ctrl-C.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import { readOptions, resolveHome } from '../../config/index.js';
import { homeHolder, homePaths } from '../../daemon/home.js';
import { StateDB } from '../../state/db.js';
import {
  buildStatus,
  renderBars,
  renderBatch,
  renderHolds,
  renderJobs,
  renderMoreJobs,
  type StatusQuery,
} from '../status-view.js';

export type StatusFlags = Record<string, unknown>;

function openState(home: string): StateDB | undefined {
  const { db } = homePaths(home);
  return existsSync(db) ? new StateDB(db) : undefined;
}

export async function statusCommand(filter: string | undefined, flags: StatusFlags): Promise<number> {
  const options = readOptions('status', flags).command;
  const home = resolveHome(options.home);
  if (options.watch === true) return watchCommand(filter, flags, 'status');
  const db = openState(home);
  const query: StatusQuery = { jobs: options.jobs === true, holds: options.holdView === true };
  if (filter !== undefined) query.filter = filter;
  if (query.jobs === true) {
    query.limit = options.limit ?? 100;
    query.page = options.page ?? 1;
    if (options.jobState !== undefined) query.state = options.jobState;
  }
  if (db === undefined) {
    if (options.json === true)
      process.stdout.write(
        `${JSON.stringify({ home, daemon: { running: false, pid: null }, watches: [], runs: [], totals: null })}\n`,
      );
    else process.stdout.write(`-- cogd: ${home} : nothing has run here yet (start with \`cogd start\`)\n`);
    return 0;
  }
  try {
    const report = buildStatus(db, home, homeHolder(home), query);
    if (options.json === true) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else
      process.stdout.write(
        `${query.holds === true ? renderHolds(report) : query.jobs === true ? `${renderJobs(report)}${renderMoreJobs(report, filter)}` : renderBatch(report)}\n`,
      );
    if (filter !== undefined && report.watches.length === 0 && report.runs.length === 0) {
      process.stderr.write(`cogd status: nothing matches ${filter}\n`);
      return 1;
    }
    return 0;
  } finally {
    db.close();
  }
}

export async function watchCommand(
  filter: string | undefined,
  flags: StatusFlags,
  verb: 'status' | 'watch' = 'watch',
): Promise<number> {
  const options = readOptions(verb, flags).command;
  const home = resolveHome(options.home);
  const db = openState(home);
  if (db === undefined) {
    process.stdout.write(`nothing has run on ${home} yet\n`);
    return 0;
  }
  const interval = options.intervalMs ?? 1000;
  const tty = process.stdout.isTTY; // undefined when piped, whatever the types say
  const query: StatusQuery = filter === undefined ? {} : { filter };
  // The runs to follow: those unfinished now (or the one named).
  const initial = buildStatus(db, home, homeHolder(home), query);
  const ids = new Set(initial.runs.filter((r) => r.state !== 'done' || filter !== undefined).map((r) => r.id));
  if (ids.size === 0) {
    process.stdout.write('no runs in progress\n');
    db.close();
    return 0;
  }
  const interrupt = new AbortController();
  process.once('SIGINT', () => interrupt.abort());
  let drawn = 0;
  let last = '';
  try {
    for (;;) {
      const report = buildStatus(db, home, homeHolder(home), query);
      report.runs = report.runs.filter((r) => ids.has(r.id));
      const lines = renderBars(report, tty ? Math.max(10, Math.min(40, process.stdout.columns - 90)) : 30);
      if (tty) {
        // Redraw in place: move up over the previous frame and clear each line.
        const frame = lines.map((l) => `\x1b[2K${l.slice(0, process.stdout.columns - 1)}`).join('\n');
        process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}A\r` : ''}${frame}\n`);
        drawn = lines.length;
      } else {
        const text = lines.join('\n');
        if (text !== last) process.stdout.write(`${text}\n`);
        last = text;
      }
      if (report.runs.every((r) => r.state === 'done') || interrupt.signal.aborted) return 0;
      await sleep(interval, undefined, { signal: interrupt.signal }).catch(() => undefined); // Ctrl-C ends the wait
    }
  } finally {
    db.close();
  }
}
