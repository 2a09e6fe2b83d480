/**
 * Holds, as condor_hold and condor_release do them: `cogd hold` records a hold on what it names —
 * a watch (it does not poll), a run (it starts no new job), a job (it is not started) — and wakes
 * whoever works on the home, which applies it (Daemon.applyHolds); `cogd release` takes it off.
 * Holds are state in the DB: they survive restarts and apply the moment a process takes the home.
 */
import { watchBatchName } from '../manifest/names.js';
import type { Target } from '../manifest/targets.js';
import type { Hold, StateDB } from '../state/db.js';

export interface HoldRequest {
  /** What changed, one line each, as condor_hold says it. */
  lines: string[];
  /** Targets that named nothing that could change. */
  unknown: string[];
  /** Something changed: whoever works on the home must act. */
  changed: boolean;
}

type Kind = 'watch' | 'run' | 'job';

/** What a target names, as (kind, id, label) triples; batch names stand for their watches and unfinished runs. */
function resolve(db: StateDB, target: Target): Array<{ kind: Kind; id: number; label: string }> {
  if (target.kind === 'watch') return [{ kind: 'watch', id: target.watch, label: `Watch w${target.watch}` }];
  if (target.kind === 'run') return [{ kind: 'run', id: target.run, label: `All jobs in run ${target.run}` }];
  if (target.kind === 'job') {
    const job = db.jobByLine(target.run, target.line);
    return job === undefined ? [] : [{ kind: 'job', id: job.id, label: `Job ${target.text}` }];
  }
  return [
    ...db
      .liveWatches()
      .filter((w) => watchBatchName(w.pattern) === target.name)
      .map((w) => ({ kind: 'watch' as const, id: w.id, label: `Watch w${w.id}` })),
    ...db
      .runsByBatch(target.name)
      .filter((r) => r.state !== 'done')
      .map((r) => ({ kind: 'run' as const, id: r.id, label: `All jobs in run ${r.id}` })),
  ];
}

/** Records `hold` on what `targets` name. */
export function requestHold(db: StateDB, targets: readonly Target[], hold: Hold): HoldRequest {
  return apply(db, targets, (kind, id) => db.hold(kind, id, hold), 'held');
}

/** Takes the holds off what `targets` name. */
export function requestRelease(db: StateDB, targets: readonly Target[]): HoldRequest {
  return apply(db, targets, (kind, id) => db.release(kind, id), 'released');
}

function apply(
  db: StateDB,
  targets: readonly Target[],
  change: (kind: Kind, id: number) => boolean,
  verb: string,
): HoldRequest {
  const request: HoldRequest = { lines: [], unknown: [], changed: false };
  for (const target of targets) {
    let done = false;
    for (const { kind, id, label } of resolve(db, target)) {
      if (!change(kind, id)) continue;
      request.lines.push(`${label} ${kind === 'job' ? 'has' : kind === 'run' ? 'have' : 'has'} been ${verb}`);
      done = true;
    }
    if (done) request.changed = true;
    else request.unknown.push(target.text);
  }
  return request;
}
