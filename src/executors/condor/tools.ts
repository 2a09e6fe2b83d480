/** What HTCondor's command-line tools print, read back: `condor_submit` and `condor_q` totals. */

export interface SubmitResult {
  /** Clusters created, with how many procs each (when the output says). */
  clusters: Array<{ cluster: number; firstProc: number; lastProc: number | null; jobs: number | null }>;
  /** WARNING/ERROR lines condor_submit printed. */
  messages: string[];
}

/**
 * Reads `condor_submit` output: the normal `N job(s) submitted to cluster C.` lines and the
 * `-terse` form `C.P - C.Q`.
 */
export function parseSubmitOutput(text: string): SubmitResult {
  const clusters: SubmitResult['clusters'] = [];
  const messages: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const normal = /^(\d+) job\(s\) submitted to cluster (\d+)\.?$/.exec(line);
    if (normal !== null) {
      const jobs = Number(normal[1]);
      clusters.push({ cluster: Number(normal[2]), firstProc: 0, lastProc: jobs - 1, jobs });
      continue;
    }
    const terse = /^(\d+)\.(\d+) - (\d+)\.(\d+)$/.exec(line);
    if (terse !== null) {
      const first = Number(terse[2]);
      const last = Number(terse[4]);
      clusters.push({ cluster: Number(terse[1]), firstProc: first, lastProc: last, jobs: last - first + 1 });
      continue;
    }
    if (/^(WARNING|ERROR)\b/.test(line)) messages.push(line);
  }
  return { clusters, messages };
}

export interface QueueTotals {
  jobs: number;
  completed: number;
  removed: number;
  idle: number;
  running: number;
  held: number;
  suspended: number;
}

/**
 * Reads the totals line of `condor_q`: `N jobs; D completed, R removed, I idle, R running, H held,
 * S suspended`, with or without a `Total for query:` prefix (the first such line counts), or the
 * older `N jobs; I idle, R running, H held`.
 */
export function parseQueueTotals(text: string): QueueTotals | undefined {
  for (const raw of text.split('\n')) {
    const match = /^(?:Total for query: )?(\d+) jobs; (.*)$/.exec(raw.trim());
    if (match === null) continue;
    const totals: QueueTotals = {
      jobs: Number(match[1]),
      completed: 0,
      removed: 0,
      idle: 0,
      running: 0,
      held: 0,
      suspended: 0,
    };
    for (const part of match[2]!.split(',')) {
      const item = /(\d+) (completed|removed|idle|running|held|suspended)/.exec(part);
      if (item !== null) totals[item[2] as keyof Omit<QueueTotals, 'jobs'>] = Number(item[1]);
    }
    return totals;
  }
  return undefined;
}
