/**
 * Named points between steps that must survive a crash. In tests, COGD_TEST_CRASH_AT=<name> makes
 * the process kill itself with SIGKILL at that point — a `kill -9` at a known moment.
 */
// Test-only, read here rather than in config.ts so that this floor imports nothing of cogd.
const target = process.env['COGD_TEST_CRASH_AT'] || undefined;

export type CrashPoint =
  | 'claim:recorded'
  | 'claim:downloaded'
  | 'claim:copied'
  | 'claim:raw-deleted'
  | 'plan:stored'
  | 'job:downloaded'
  | 'job:converted'
  | 'job:uploaded'
  | 'post:csv-written'
  | 'post:processing-deleted'
  | 'condor:batch-recorded'
  | 'condor:submitted'
  | 'condor:result-recorded'
  | 'slurm:batch-recorded'
  | 'slurm:submitted'
  | 'slurm:result-recorded';

export function crashPoint(name: CrashPoint): void {
  if (target === name) process.kill(process.pid, 'SIGKILL');
}
