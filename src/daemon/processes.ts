/**
 * The GDAL processes of a home's jobs, recorded in the state DB while they run. GDAL runs in its own
 * process group (so a stop, a removal or a deadline kills everything it started); after a `kill -9`
 * of cogd nothing would kill those groups, and they would race the restarted daemon's new attempt
 * of the same job. So each start first kills the groups a previous process of the home left —
 * where the pid still names the very process recorded (same boot, same start time, same program).
 * Runs' --on-run-end commands are recorded the same way (job id -run), so a hook a dead cogd left
 * running is killed before the restarted one runs it again.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessTracker } from '../convert/gdal.js';
import type { Log } from '../log/index.js';
import type { StateDB } from '../state/db.js';
import { processStart } from './home.js';

/** The program a process runs now, with its arguments (`/proc/<pid>/cmdline`). */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

export class ProcessRegistry {
  constructor(
    private readonly db: StateDB,
    private readonly owner = process.pid,
  ) {}

  /** A tracker for one job's GDAL commands. */
  forJob(jobId: number): ProcessTracker {
    return {
      started: (pid, command) => {
        const startTime = processStart(pid);
        if (startTime !== undefined) this.db.recordProcess({ pid, jobId, command, startTime, ownerPid: this.owner });
      },
      ended: (pid) => this.db.forgetProcess(pid),
    };
  }

  /** A tracker for a run's --on-run-end command: recorded under job id -run (see migration 7). */
  forHook(runId: number): ProcessTracker {
    return this.forJob(-runId);
  }

  /**
   * Kills the process groups that earlier processes of this home left running, and waits (up to
   * `waitMs`) until they are gone. Returns how many were killed.
   */
  async killLeftovers(log: Log, waitMs = 10_000): Promise<number> {
    const killed: Array<{ pid: number; startTime: string }> = [];
    for (const proc of this.db.leftProcesses(this.owner)) {
      const same = processStart(proc.pid) === proc.startTime && commandLine(proc.pid).includes(proc.command);
      if (same) {
        try {
          process.kill(-proc.pid, 'SIGKILL');
          killed.push(proc);
          log.warn(proc.jobId < 0 ? 'Run:HookOrphanKilled' : 'Job:OrphanKilled', {
            ...(proc.jobId < 0 ? { run: -proc.jobId } : { job: proc.jobId }),
            pid: proc.pid,
            command: proc.command,
            reason: 'left running by a cogd process that died',
          });
        } catch {
          // gone meanwhile
        }
      }
      this.db.forgetProcess(proc.pid);
    }
    const deadline = Date.now() + waitMs;
    while (killed.some((p) => processStart(p.pid) === p.startTime) && Date.now() < deadline) await sleep(20);
    return killed.length;
  }
}
