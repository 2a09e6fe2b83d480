/**
 * A chunk of a run's event log into the state DB: each event applied (`applyEvent`) to the job it
 * names and the byte offset after the chunk, in one transaction — so a restart resumes at exactly
 * the event after the last one recorded, and an outcome is never recorded without its offset.
 */
import type { StateDB } from '../../state/db.js';
import type { JobEvent } from './eventlog.js';
import { applyEvent, submitNoteBatch, type EventEffect } from './events.js';

export interface Recorded {
  /** Every event's effect, in log order (the executor logs the notes and settles the outcomes). */
  effects: EventEffect[];
  /** Jobs whose attempt ended in this chunk, with the outcome recorded for each. */
  settled: Array<[jobId: number, result: string]>;
}

/** Applies `events` of run `runId` and stores `next` as its offset, in one transaction. */
export function recordEvents(db: StateDB, runId: number, events: JobEvent[], next: number): Recorded {
  const effects: EventEffect[] = [];
  const settled: Recorded['settled'] = [];
  db.transaction(() => {
    for (const event of events) {
      // One job per proc, or a group of them (--rows-per-job): the event is each one's.
      let jobs = db.condorJobs(runId, event.cluster, event.proc);
      if (jobs.length === 0) {
        // A submit event of a batch whose condor_submit output we never read (a crash).
        const batch = submitNoteBatch(event, runId);
        if (batch === undefined) continue; // another run's or another attempt's job
        db.setCondorCluster(runId, batch, event.cluster);
        jobs = db.condorJobs(runId, event.cluster, event.proc);
      }
      for (const job of jobs) {
        // Read inside the transaction: a hold earlier in this chunk is already the job's error.
        const effect = applyEvent({ jobId: job.jobId, result: job.result, error: db.jobError(job.jobId) }, event);
        if (effect === undefined) continue;
        if (effect.progress !== undefined)
          db.setCondorProgress(job.jobId, effect.progress.state, effect.progress.error);
        if (effect.result !== undefined) {
          db.setCondorResult(job.jobId, effect.result);
          settled.push([job.jobId, effect.result]);
        }
        effects.push(effect);
      }
    }
    db.setCondorOffset(runId, next);
  });
  return { effects, settled };
}
