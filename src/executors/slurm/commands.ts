/**
 * Running Slurm's tools: `sbatch`, one status call for many arrays (`sacct` where accounting runs,
 * else `squeue -t all -r`), the lookup of a batch by its job name, `scancel`, `scontrol
 * hold/release`. No shell: each value is one argv word. A status call that fails throws — a failed
 * squeue is not a finished job — and the caller decides nothing from it (a failing sacct is
 * replaced by squeue for that call).
 */
import { execa } from 'execa';
import { CogdError, describeError } from '../../errors.js';
import type { Log } from '../../log/index.js';
import {
  accountingDisabled,
  arraysToAsk,
  mergeStatuses,
  noneKnown,
  parseSacct,
  parseSbatchOutput,
  parseSqueue,
  sacctArgs,
  sacctByNameArgs,
  squeueArgs,
  squeueByNameArgs,
  type TaskStatus,
} from './tools.js';

/** How long one status or cancel call may take before it counts as failed. */
const TOOL_TIMEOUT_MS = 60_000;

/** What a tool said, in one line for a message (its first lines). */
function said(result: { stdout?: unknown; stderr?: unknown }): string {
  const text = `${typeof result.stderr === 'string' ? result.stderr : ''}\n${typeof result.stdout === 'string' ? result.stdout : ''}`;
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.slice(0, 3).join(' / ') || 'no output';
}

export class SlurmTools {
  private accounting: Promise<boolean> | undefined;

  constructor(private readonly log: Log) {}

  /** Whether sacct answers (accounting runs): asked once per process. */
  hasAccounting(): Promise<boolean> {
    this.accounting ??= execa('sacct', ['-n', '-X', '-P', '-j', '1', '-o', 'JobID'], {
      reject: false,
      timeout: TOOL_TIMEOUT_MS,
    }).then((result) => {
      const on = result.exitCode === 0 && !accountingDisabled(`${result.stdout}\n${result.stderr}`);
      this.log.info('Slurm:Accounting', {
        sacct: on ? 'available' : 'not available: following jobs with squeue -t all',
        ...(on ? {} : { said: said(result) }),
      });
      return on;
    });
    return this.accounting;
  }

  /** Submits one array; returns its job id. */
  async submit(args: string[], cwd: string): Promise<number> {
    const result = await execa('sbatch', args, { cwd, reject: false, timeout: 120_000 });
    const arrayId = result.exitCode === 0 ? parseSbatchOutput(result.stdout) : undefined;
    if (arrayId === undefined) {
      throw new CogdError(
        result.timedOut || result.exitCode === undefined ? 'SlurmSubmitUnanswered' : 'SlurmSubmitFailed',
        `sbatch failed (${result.timedOut ? 'no answer in 120 s' : `exit ${result.exitCode ?? result.signal ?? '?'}`}): ${said(result)}`,
        {
          hint: 'check that sbatch works on this machine and the --partition, --account, --mem and --sbatch-arg settings (cogd config)',
        },
      );
    }
    return arrayId;
  }

  /** Every task of these arrays, from one call. */
  async status(arrayIds: readonly number[]): Promise<TaskStatus[]> {
    if (arrayIds.length === 0) return [];
    if (await this.hasAccounting()) {
      const result = await execa('sacct', sacctArgs(arrayIds), { reject: false, timeout: TOOL_TIMEOUT_MS });
      if (result.exitCode === 0) {
        const tasks = this.parsed('sacct', parseSacct(result.stdout));
        // sacct lags the controller: slurmdbd records a job some time after it was submitted (longer on a
        // busy machine), and a pending job's reason as it was then ("None" before the scheduler looked at
        // it; a later reason is not sent on). squeue knows every live job as it is now: it is asked for
        // the arrays sacct leaves out or lists waiting without a reason, and its answer wins per task.
        const ask = arraysToAsk(arrayIds, tasks);
        return ask.length === 0 ? tasks : mergeStatuses(tasks, await this.queued(ask));
      }
      // slurmdbd down, say: squeue still knows every job younger than MinJobAge.
      this.log.warn('Slurm:SacctFailed', { said: said(result), instead: 'squeue -t all' });
    }
    return this.queued(arrayIds);
  }

  /** squeue's view of the arrays' tasks, in every state (finished ones until MinJobAge). */
  private async queued(arrayIds: readonly number[]): Promise<TaskStatus[]> {
    const result = await execa('squeue', squeueArgs(arrayIds), { reject: false, timeout: TOOL_TIMEOUT_MS });
    if (result.exitCode !== 0) {
      if (noneKnown(result.stderr)) return [];
      throw new CogdError('SlurmStatusFailed', `squeue failed: ${said(result)}`);
    }
    return this.parsed('squeue', parseSqueue(result.stdout));
  }

  /** The jobs called `name`: squeue (recent and live) and, where accounting runs, sacct (for good). */
  async byName(name: string, since: Date): Promise<TaskStatus[]> {
    const queue = await execa('squeue', squeueByNameArgs(name), { reject: false, timeout: TOOL_TIMEOUT_MS });
    if (queue.exitCode !== 0) throw new CogdError('SlurmStatusFailed', `squeue -n ${name} failed: ${said(queue)}`);
    const found = this.parsed('squeue', parseSqueue(queue.stdout)).filter(
      (t) => t.name === undefined || t.name === name,
    );
    if (found.length > 0 || !(await this.hasAccounting())) return found;
    const acct = await execa('sacct', sacctByNameArgs(name, since), { reject: false, timeout: TOOL_TIMEOUT_MS });
    if (acct.exitCode !== 0) throw new CogdError('SlurmStatusFailed', `sacct --name=${name} failed: ${said(acct)}`);
    return this.parsed('sacct', parseSacct(acct.stdout)).filter((t) => t.name === undefined || t.name === name);
  }

  private parsed(tool: string, parsed: { tasks: TaskStatus[]; skipped: string[] }): TaskStatus[] {
    for (const line of parsed.skipped) this.log.warn('Slurm:LineSkipped', { tool, line });
    return parsed.tasks;
  }

  /** One scancel for all the ids (`A` or `A_T`); resolves with whether it worked, never rejects. */
  async cancel(ids: readonly string[]): Promise<{ ok: boolean; output: string }> {
    return this.simple('scancel', [...ids]);
  }

  /** `scontrol hold` / `release` of the ids. */
  async control(verb: 'hold' | 'release', ids: readonly string[]): Promise<{ ok: boolean; output: string }> {
    return this.simple('scontrol', [verb, ...ids]);
  }

  private async simple(command: string, args: string[]): Promise<{ ok: boolean; output: string }> {
    try {
      const result = await execa(command, args, { reject: false, timeout: TOOL_TIMEOUT_MS });
      return { ok: result.exitCode === 0, output: `${result.stdout}\n${result.stderr}`.trim() };
    } catch (error) {
      return { ok: false, output: describeError(error) };
    }
  }
}
