/**
 * Slurm's command-line tools as cogd calls them, and what they print, read back: the argument lists
 * of `sbatch`, `squeue`, `sacct`, `scancel` and `scontrol hold/release` (never a shell: every value
 * is one argv word), and pure parsers of their output. The parsers are checked against outputs of a
 * real Slurm 22.05 cluster (test/fixtures/slurm/, captured by scripts/slurm-fixtures.mjs).
 *
 * Facts they rely on (../shared/notes/slurm.md, and the fixtures):
 * - `squeue` hides finished jobs unless `-t all`; `-r` lists array tasks one per line. A list of ids
 *   of which none is known fails with "Invalid job id specified" (exit 1); unknown ids in a list
 *   with known ones are left out.
 * - The pending rest of an array is one record (`ArrayTaskID` `2-5%2`, or `N/A` once cancelled as
 *   a whole); its tasks get job ids of their own only when they start.
 * - `sacct -X -P` prints `A_T` for tasks, `A_[2-5%2]` for the pending rest, `A` for the array's own
 *   record; the State of a cancelled job is `CANCELLED by <uid>`; ExitCode is `code:signal`.
 * - `squeue -O exit_code` is the raw wait status (768 = exit 3, 9 = SIGKILL).
 */

/** A job (array task) as Slurm reports it, from squeue or sacct. */
export interface TaskStatus {
  /** The array's job id (a job that is no array: its own id). */
  arrayId: number;
  /** The array task index; undefined for a record that stands for several (or all) tasks. */
  task: number | undefined;
  /** The task indexes a record of several tasks covers (`[2-5%2]`); undefined: all not listed. */
  tasks?: number[] | undefined;
  /** The job's own id (JobIDRaw): a pending task's is the array's until it starts. */
  jobId: number;
  /** The state's first word (`CANCELLED by 0` → CANCELLED). */
  state: string;
  /** Who cancelled it (sacct's `CANCELLED by <uid>`). */
  cancelledBy?: number | undefined;
  /** Why it waits, or why it ended (None → undefined). */
  reason?: string | undefined;
  exitCode?: number | undefined;
  signal?: number | undefined;
  /** ISO-like times from sacct (undefined when Unknown/None). */
  start?: string | undefined;
  end?: string | undefined;
  name?: string | undefined;
}

/** States in which a job waits for a node. */
export const PENDING_STATES: ReadonlySet<string> = new Set([
  'PENDING',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESV_DEL_HOLD',
  'CONFIGURING',
]);
/** States in which a job holds a node. */
export const ACTIVE_STATES: ReadonlySet<string> = new Set([
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'STOPPED',
  'SIGNALING',
  'STAGE_OUT',
  'RESIZING',
]);

// ---- sbatch

/** What a batch is submitted with, besides its rows. */
export interface SbatchSettings {
  partition?: string | undefined;
  account?: string | undefined;
  /** --time, minutes (Slurm's limits are whole minutes). */
  timeMinutes: number;
  /** --mem, as Slurm reads it (2G, 512M); undefined: the cluster's default. */
  mem?: string | undefined;
  cpusPerTask: number;
  /** --sbatch-arg values, after cogd's own (a later option wins in sbatch). */
  extra: readonly string[];
  /** Environment variables the task gets (their values as set here; SLURM_* always). */
  exportNames: readonly string[];
}

/** Every argument of one array submission (`sbatch --parsable --array=0-N%K`). */
export function sbatchArgs(batch: {
  name: string;
  comment: string;
  tasks: number;
  /** Tasks of the array running at once at most (`%K`). */
  throttle: number;
  /** Where Slurm writes a task's streams before the script redirects them (`%a` = task index). */
  output: string;
  workdir: string;
  script: string;
  scriptArgs: readonly string[];
  settings: SbatchSettings;
}): string[] {
  const s = batch.settings;
  const k = Math.max(1, Math.min(batch.throttle, batch.tasks));
  return [
    '--parsable',
    `--job-name=${batch.name}`,
    `--comment=${batch.comment}`,
    `--array=0-${batch.tasks - 1}%${k}`,
    `--time=${Math.max(1, Math.ceil(s.timeMinutes))}`,
    `--cpus-per-task=${s.cpusPerTask}`,
    ...(s.mem === undefined ? [] : [`--mem=${s.mem}`]),
    ...(s.partition === undefined ? [] : [`--partition=${s.partition}`]),
    ...(s.account === undefined ? [] : [`--account=${s.account}`]),
    // cogd requeues what a node failure or a preemption ended, at once and counted (Slurm's own
    // requeue waits two minutes and runs the task again behind cogd's back).
    '--no-requeue',
    '--ntasks=1',
    `--output=${batch.output}`,
    `--error=${batch.output}`,
    `--chdir=${batch.workdir}`,
    `--export=${s.exportNames.length === 0 ? 'NONE' : s.exportNames.join(',')}`,
    ...s.extra,
    batch.script,
    ...batch.scriptArgs,
  ];
}

/** `sbatch --parsable` prints `jobid` or `jobid;cluster`. */
export function parseSbatchOutput(stdout: string): number | undefined {
  const line = stdout
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^\d+(;\S+)?$/.test(l));
  return line === undefined ? undefined : Number(line.split(';')[0]);
}

// ---- squeue

/** squeue's fields, `|`-separated (`-O name:|`): nothing cogd puts in a name contains a `|`. */
export const SQUEUE_FIELDS = ['ArrayJobID', 'ArrayTaskID', 'JobID', 'State', 'Reason', 'exit_code', 'Name'] as const;

/** The array jobs' tasks in every state, one per line. */
export function squeueArgs(arrayIds: readonly number[]): string[] {
  return ['-h', '-t', 'all', '-r', '-j', arrayIds.join(','), '-O', SQUEUE_FIELDS.map((f) => `${f}:|`).join(',')];
}

/** The jobs called `name` (a batch whose sbatch answer was lost), in every state. */
export function squeueByNameArgs(name: string): string[] {
  return ['-h', '-t', 'all', '-r', '-n', name, '-O', SQUEUE_FIELDS.map((f) => `${f}:|`).join(',')];
}

/** squeue's answer when none of the ids it was given is known (any more): not a failure. */
export function noneKnown(stderr: string): boolean {
  return /Invalid job id specified/i.test(stderr);
}

/** Task indexes of `2-5%2`, `[0,3-4]`, `7`; undefined for `N/A`. */
export function parseTaskRange(text: string): number[] | undefined {
  const inner = text
    .trim()
    .replace(/^\[|\]$/g, '')
    .replace(/%\d+$/, '');
  if (inner === '' || inner === 'N/A') return undefined;
  const tasks: number[] = [];
  for (const part of inner.split(',')) {
    const range = /^(\d+)(?:-(\d+))?(?::(\d+))?$/.exec(part.trim());
    if (range === null) return undefined;
    const from = Number(range[1]);
    const to = range[2] === undefined ? from : Number(range[2]);
    const step = range[3] === undefined ? 1 : Number(range[3]);
    for (let t = from; t <= to; t += step) tasks.push(t);
  }
  return tasks;
}

const noReason = (reason: string | undefined): string | undefined =>
  reason === undefined || reason === '' || reason === 'None' || reason === '(null)' ? undefined : reason;

/** Lines of `squeue ... -O <SQUEUE_FIELDS>`; lines that do not fit are skipped (returned apart). */
export function parseSqueue(stdout: string): { tasks: TaskStatus[]; skipped: string[] } {
  const tasks: TaskStatus[] = [];
  const skipped: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split('|');
    const [arrayJob, arrayTask, jobId, state, reason, status, name] = f;
    if (
      arrayJob === undefined ||
      !/^\d+$/.test(arrayJob.trim()) ||
      jobId === undefined ||
      !/^\d+$/.test(jobId.trim()) ||
      state === undefined ||
      !/^[A-Z_]+$/.test(state.trim())
    ) {
      skipped.push(line);
      continue;
    }
    const range = parseTaskRange(arrayTask ?? 'N/A');
    const single = /^\d+$/.test((arrayTask ?? '').trim());
    const raw = /^\d+$/.test((status ?? '').trim()) ? Number(status) : undefined;
    tasks.push({
      arrayId: Number(arrayJob),
      task: single ? Number(arrayTask) : undefined,
      tasks: single ? undefined : range,
      jobId: Number(jobId),
      state: state.trim(),
      reason: noReason(reason?.trim()),
      // The raw wait status: exit code in the high byte, the signal in the low 7 bits.
      exitCode: raw === undefined ? undefined : (raw >> 8) & 0xff,
      signal: raw === undefined ? undefined : raw & 0x7f,
      name: name?.trim() === '' ? undefined : name?.trim(),
    });
  }
  return { tasks, skipped };
}

// ---- sacct

export const SACCT_FIELDS = ['JobID', 'JobIDRaw', 'State', 'ExitCode', 'Reason', 'Start', 'End', 'JobName'] as const;

/** One call for all the arrays' tasks: allocations only (`-X`), parsable (`-P`), no header. */
export function sacctArgs(arrayIds: readonly number[]): string[] {
  return ['-n', '-X', '-P', '-j', arrayIds.join(','), '-o', SACCT_FIELDS.join(',')];
}

/** The jobs called `name` since `since` (sacct without -j lists only today's jobs otherwise). */
export function sacctByNameArgs(name: string, since: Date): string[] {
  const start = since.toISOString().slice(0, 19);
  return ['-n', '-X', '-P', `--name=${name}`, `--starttime=${start}`, '-o', SACCT_FIELDS.join(',')];
}

/** sacct's answer on a cluster without accounting: use squeue. */
export function accountingDisabled(text: string): boolean {
  return /accounting storage is disabled|not running a supported accounting_storage plugin/i.test(text);
}

const time = (value: string | undefined): string | undefined =>
  value === undefined || value === '' || value === 'Unknown' || value === 'None' ? undefined : value;

/** Lines of `sacct -n -X -P -o <SACCT_FIELDS>`. */
export function parseSacct(stdout: string): { tasks: TaskStatus[]; skipped: string[] } {
  const tasks: TaskStatus[] = [];
  const skipped: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const [jobIdText, rawText, stateText, exit, reason, start, end, name] = line.split('|');
    const id = /^(\d+)(?:_(\d+|\[[^\]]*\]))?$/.exec(jobIdText?.trim() ?? '');
    const stateWords = /^([A-Z_]+)(?: by (\d+))?/.exec(stateText?.trim() ?? '');
    if (id === null || stateWords === null || !/^\d+$/.test(rawText?.trim() ?? '')) {
      skipped.push(line);
      continue;
    }
    const taskPart = id[2];
    const single = taskPart !== undefined && /^\d+$/.test(taskPart);
    const codes = /^(\d+):(\d+)$/.exec(exit?.trim() ?? '');
    tasks.push({
      arrayId: Number(id[1]),
      task: single ? Number(taskPart) : undefined,
      tasks: single || taskPart === undefined ? undefined : parseTaskRange(taskPart),
      jobId: Number(rawText),
      state: stateWords[1]!,
      cancelledBy: stateWords[2] === undefined ? undefined : Number(stateWords[2]),
      reason: noReason(reason?.trim()),
      exitCode: codes === null ? undefined : Number(codes[1]),
      signal: codes === null ? undefined : Number(codes[2]),
      start: time(start?.trim()),
      end: time(end?.trim()),
      name: name?.trim() === '' ? undefined : name?.trim(),
    });
  }
  return { tasks, skipped };
}

// ---- what a poll saw, per task

/**
 * The status of each task of the arrays from one listing. A task listed on its own line is that
 * line; a task that is not is covered by its array's record of several tasks (the pending rest,
 * or the whole array cancelled while pending) where there is one; else Slurm does not know it.
 */
export class StatusIndex {
  private readonly byTask = new Map<string, TaskStatus>();
  private readonly rest = new Map<number, TaskStatus[]>();
  private readonly arrays = new Set<number>();

  constructor(statuses: readonly TaskStatus[]) {
    for (const s of statuses) {
      this.arrays.add(s.arrayId);
      if (s.task !== undefined) this.byTask.set(`${s.arrayId}_${s.task}`, s);
      else this.rest.set(s.arrayId, [...(this.rest.get(s.arrayId) ?? []), s]);
    }
  }

  /** Whether any record of the array is listed. */
  knows(arrayId: number): boolean {
    return this.arrays.has(arrayId);
  }

  get(arrayId: number, task: number): TaskStatus | undefined {
    const own = this.byTask.get(`${arrayId}_${task}`);
    if (own !== undefined) return own;
    const records = this.rest.get(arrayId) ?? [];
    return (
      records.find((r) => r.tasks?.includes(task) === true) ??
      // The array's own record (`A`, task N/A) stands for the tasks not listed apart.
      records.find((r) => r.tasks === undefined && r.jobId === arrayId)
    );
  }
}

/** The arrays squeue is asked about: those sacct does not list, or lists with a task waiting for no reason given. */
export function arraysToAsk(arrayIds: readonly number[], fromSacct: readonly TaskStatus[]): number[] {
  const listed = new Set<number>();
  const unexplained = new Set<number>();
  for (const t of fromSacct) {
    listed.add(t.arrayId);
    if (PENDING_STATES.has(t.state) && t.reason === undefined) unexplained.add(t.arrayId);
  }
  return arrayIds.filter((id) => !listed.has(id) || unexplained.has(id));
}

/** sacct's tasks with squeue's in place of the same tasks (squeue is the controller's view now). */
export function mergeStatuses(fromSacct: readonly TaskStatus[], fromSqueue: readonly TaskStatus[]): TaskStatus[] {
  const key = (t: TaskStatus): string => `${t.arrayId}_${t.task}`;
  const live = new Set(fromSqueue.map(key));
  return [...fromSacct.filter((t) => !live.has(key(t))), ...fromSqueue];
}

// ---- scancel, scontrol

/** `A_T` ids of array tasks (scancel and scontrol take them as they are). */
export const taskId = (arrayId: number, task: number): string => `${arrayId}_${task}`;

/**
 * The ids for one scancel (or scontrol hold): an array whose every task still queued is named
 * goes as the array (`A`), the rest as `A_T`.
 */
export function compactIds(
  tasks: ReadonlyArray<{ arrayId: number; task: number }>,
  liveTasks: (arrayId: number) => number[],
): string[] {
  const byArray = new Map<number, Set<number>>();
  for (const { arrayId, task } of tasks) byArray.set(arrayId, (byArray.get(arrayId) ?? new Set()).add(task));
  const ids: string[] = [];
  for (const [arrayId, named] of byArray) {
    const live = liveTasks(arrayId);
    if (live.length > 0 && live.every((t) => named.has(t))) ids.push(String(arrayId));
    else ids.push(...[...named].sort((a, b) => a - b).map((t) => taskId(arrayId, t)));
  }
  return ids;
}
