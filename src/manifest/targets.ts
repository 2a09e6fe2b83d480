/**
 * What a user names on the command line (`cogd rm`, `status`, `logs`), as condor_q and condor_rm
 * read their arguments: a run (`12`), a job (`12.5`: manifest line 5 of run 12), a watch (`w3`), or
 * a batch name (`COG-Pipeline-DAG-<pattern>` for a watch's runs, `COG-Pipeline-Crondor-<pattern>`
 * for the watch itself). One grammar, parsed here only.
 */
import { UsageError } from '../errors.js';

export type Target =
  | { kind: 'run'; run: number; text: string }
  | { kind: 'job'; run: number; line: number; text: string }
  | { kind: 'watch'; watch: number; text: string }
  | { kind: 'batch'; name: string; text: string };

export function parseTarget(text: string): Target {
  const value = text.trim();
  let match: RegExpExecArray | null;
  if ((match = /^(\d+)$/.exec(value)) !== null) return { kind: 'run', run: Number(match[1]), text: value };
  if ((match = /^(\d+)\.(\d+)$/.exec(value)) !== null)
    return { kind: 'job', run: Number(match[1]), line: Number(match[2]), text: value };
  if ((match = /^w(\d+)$/i.exec(value)) !== null) return { kind: 'watch', watch: Number(match[1]), text: value };
  if (value === '' || /^[\d.]+$/.test(value)) {
    throw new UsageError(
      `"${text}" is not a run, job, watch or batch name`,
      'runs are 12, jobs 12.5, watches w3, batches COG-Pipeline-DAG-<pattern>',
    );
  }
  return { kind: 'batch', name: value, text: value };
}

/** A run id alone (`cogd logs 12`). */
export function parseRun(text: string): number {
  const target = parseTarget(text);
  if (target.kind !== 'run')
    throw new UsageError(
      `"${text}" is not a run id`,
      'run ids are the numbers `cogd status` shows, e.g. `cogd logs 12`',
    );
  return target.run;
}
