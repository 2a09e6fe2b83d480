/**
 * The text layout of `cogd status` in the spirit of `condor_q`'s batch view (`--jobs` for the
 * `-nobatch` view, `-hold` for what is held). Pure functions of the report (src/state/report.ts),
 * so the layout is tested with fixed data.
 */
import type { Hold } from '../state/db.js';
import type { StatusReport } from '../state/report.js';
import type { JobState } from '../types.js';

export * from '../state/report.js';

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `M/D HH:MM` in local time, as condor_q prints SUBMITTED. */
export function submitted(iso: string): string {
  const d = new Date(iso);
  return `${d.getMonth() + 1}/${d.getDate()} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

const dash = (n: number): string => (n === 0 ? '_' : String(n));

/** Rows as aligned columns, condor_q style (the last column is not padded). */
export function table(rows: string[][], rightAligned: Set<number>): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((row) =>
    row
      .map((cell, i) =>
        i === row.length - 1 ? cell : rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!),
      )
      .join(' ')
      .trimEnd(),
  );
}

function header(report: StatusReport, now: Date): string {
  const when = `${now.getMonth() + 1}/${now.getDate()}/${String(now.getFullYear()).slice(2)} ${pad2(now.getHours())}:${pad2(now.getMinutes())}:${pad2(now.getSeconds())}`;
  const daemon = report.daemon.running
    ? `daemon pid ${report.daemon.pid ?? '?'}`
    : report.poll !== undefined
      ? `cogd poll pid ${report.poll.pid ?? '?'} working, no daemon running`
      : 'no daemon running';
  return `-- cogd: ${report.home} : ${daemon} @ ${when}`;
}

function totalsLine(t: StatusReport['totals']): string {
  return `Total for query: ${t.total} jobs; ${t.done} completed, ${t.failed} failed, ${t.removed} removed, ${t.idle} idle, ${t.running} running, ${t.held} held, ${t.suspended} suspended`;
}

/** The batch view: one line per watch and per run, then notes on failures, then the totals. */
export function renderBatch(report: StatusReport, now = new Date()): string {
  const rows: string[][] = [['OWNER', 'BATCH_NAME', 'SUBMITTED', 'DONE', 'RUN', 'IDLE', 'HOLD', 'TOTAL', 'JOB_IDS']];
  for (const w of report.watches) {
    rows.push([
      report.owner,
      w.batchName,
      submitted(w.createdAt),
      '_',
      '_',
      '_',
      w.hold === null ? '_' : 'H',
      '_',
      w.id,
    ]);
  }
  for (const r of report.runs) {
    const c = r.counts;
    const finished = c.done + c.failed + c.removed;
    const ids =
      r.firstLine === null
        ? `${r.id}`
        : r.firstLine === r.lastLine
          ? `${r.id}.${r.firstLine}`
          : `${r.id}.${r.firstLine} ... ${r.id}.${r.lastLine}`;
    const arrays = r.slurmArrays ?? [];
    rows.push([
      report.owner,
      r.batchName,
      submitted(r.createdAt),
      dash(finished),
      dash(c.running),
      dash(c.idle),
      dash(c.held),
      dash(c.total),
      arrays.length === 0 ? ids : `${ids} (Slurm ${arrays.join(',')})`,
    ]);
  }
  const lines = [header(report, now), ...table(rows, new Set([3, 4, 5, 6, 7]))];
  const notes: string[] = [];
  for (const w of report.watches) {
    if (w.conditionalWrites === false) {
      notes.push(
        `watch ${w.id}: s3://${w.inputBucket} does not enforce conditional writes; only one cogd daemon may watch this bucket`,
      );
    }
    if (w.warning !== null) notes.push(`watch ${w.id}: warning: ${w.warning}`);
    if (w.hold !== null) notes.push(`watch ${w.id}: ${holdText(w.hold)}; not polling (cogd release ${w.id})`);
    if (w.lastPollError !== null) notes.push(`watch ${w.id}: last poll failed: ${w.lastPollError}`);
  }
  for (const r of report.runs) {
    if (r.retryOf !== null) notes.push(`run ${r.id} ${r.manifest}: retry of ${r.retryOf}`);
    if (r.hold !== null)
      notes.push(`run ${r.id} ${r.manifest}: ${holdText(r.hold)}; starts no job (cogd release ${r.id})`);
    if (r.manifestError !== null) notes.push(`run ${r.id} ${r.manifest}: manifest rejected: ${r.manifestError}`);
    if (r.postError !== null)
      notes.push(`run ${r.id} ${r.manifest}: post failed: ${r.postError} (retried at the next poll)`);
    for (const { reason, jobs } of r.holdReasons) {
      // The reasons are stored as "held: <HTCondor's HoldReason>".
      notes.push(
        `run ${r.id} ${r.manifest}: ${jobs} ${jobs === 1 ? 'job' : 'jobs'} ${reason.startsWith('held: ') ? reason : `held: ${reason}`}`,
      );
    }
    for (const { reason, jobs } of r.slurmPending ?? []) {
      notes.push(`run ${r.id} ${r.manifest}: ${jobs} ${jobs === 1 ? 'job waits' : 'jobs wait'} in Slurm: ${reason}`);
    }
    if (r.counts.failed > 0 || r.counts.removed > 0) {
      notes.push(
        `run ${r.id} ${r.manifest}: ${r.counts.failed} failed, ${r.counts.removed} removed (why: cogd status --jobs ${r.id})`,
      );
    }
    if (r.state === 'done' && r.manifestError === null && r.counts.failed === 0 && r.counts.removed === 0) {
      notes.push(`run ${r.id} ${r.manifest}: done, all ${r.counts.done} rows processed`);
    }
    if (r.hook !== null) notes.push(`run ${r.id} ${r.manifest}: --on-run-end ${hookNote(r.hook)}`);
    if (r.notify !== null)
      notes.push(
        `run ${r.id} ${r.manifest}: --notify-url ${r.notify.state === 'pending' ? 'pending' : `${r.notify.state}: ${r.notify.result ?? ''}`}`,
      );
  }
  return [...lines, '', ...(notes.length > 0 ? [...notes, ''] : []), totalsLine(report.totals)].join('\n');
}

/** "held by ana since 11/30 14:02: disk full": who held it, when, why. */
export function holdText(hold: Hold): string {
  return `held by ${hold.by} since ${submitted(hold.since)}: ${hold.reason}`;
}

/** The `-hold` view, condor_q's columns: ID, OWNER, HELD_SINCE, HOLD_REASON. */
export function renderHolds(report: StatusReport, now = new Date()): string {
  const rows: string[][] = [['ID', 'OWNER', 'HELD_SINCE', 'HOLD_REASON']];
  for (const h of report.holds ?? []) rows.push([h.id, h.owner, submitted(h.since), h.reason]);
  const count = (report.holds ?? []).length;
  return [header(report, now), ...table(rows, new Set()), '', `${count} ${count === 1 ? 'thing' : 'things'} held`].join(
    '\n',
  );
}

function hookNote(hook: NonNullable<StatusReport['runs'][number]['hook']>): string {
  if (hook.state === 'pending')
    return hook.startedAt === null ? 'pending' : `pending (started ${submitted(hook.startedAt)})`;
  const again = hook.starts > 1 ? ` (started ${hook.starts} times: a restart ran it again)` : '';
  const output = hook.state === 'ok' ? '' : '; its output: hook.out, hook.err';
  return `${hook.state}: ${hook.result ?? ''}${again}${output}`;
}

const STATE_CODE: Record<JobState, string> = {
  idle: 'I',
  running: 'R',
  held: 'H',
  converted: 'C',
  failed: 'F',
  removed: 'X',
};

/** The `-nobatch` view: one line per job with its state and last error. */
export function renderJobs(report: StatusReport, now = new Date()): string {
  const rows: string[][] = [['ID', 'OWNER', 'SUBMITTED', 'ST', 'TRIES', 'KEY', 'LAST_ERROR']];
  for (const j of report.jobs ?? []) {
    rows.push([
      j.id,
      report.owner,
      submitted(j.createdAt),
      STATE_CODE[j.state],
      String(j.attempts),
      j.key ?? '-',
      j.error ?? '',
    ]);
  }
  return [header(report, now), ...table(rows, new Set([4])), '', totalsLine(report.totals)].join('\n');
}

/** The line under a page of `--jobs`: how many jobs it shows of how many, and how to see the rest. */
export function renderMoreJobs(report: StatusReport, filter: string | undefined): string {
  const shown = report.jobsShown;
  if (shown === undefined || (shown.offset === 0 && shown.more === 0)) return '';
  const listed = report.jobs?.length ?? 0;
  const range = listed === 0 ? 'none' : `${shown.offset + 1}-${shown.offset + listed}`;
  const what = `${shown.state === null ? '' : `${shown.state} `}jobs`;
  let line = `\n${range} of ${shown.total} ${what} shown`;
  if (shown.more > 0) {
    const args = [
      'cogd status --jobs',
      ...(filter === undefined ? [] : [filter]),
      ...(shown.state === null ? [] : [`--state ${shown.state}`]),
      ...(shown.limit === 100 ? [] : [`--limit ${shown.limit}`]),
      `--page ${Math.floor(shown.offset / shown.limit) + 2}`,
    ];
    line += `; ${shown.more} more: ${args.join(' ')} (--limit 0 lists all)`;
  }
  return line;
}

/** One progress bar per run for `cogd status --watch`. */
export function renderBars(report: StatusReport, width = 30): string[] {
  return report.runs.map((r) => {
    const c = r.counts;
    const finished = c.done + c.failed + c.removed;
    const filled = c.total === 0 ? width : Math.round((finished / c.total) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const state = r.state === 'done' ? 'done' : r.postError !== null ? 'post failed' : r.state;
    return `run ${r.id} [${bar}] ${finished}/${c.total} done: ${c.done} converted, ${c.failed} failed, ${c.removed} removed; ${c.running} running, ${c.idle} idle, ${c.held} held (${state}) ${r.manifest}`;
  });
}
