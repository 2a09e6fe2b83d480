/**
 * `cogd hold` / `cogd release`: like condor_hold and condor_release, for watches (w3: no polls),
 * runs (12: no new jobs), jobs (12.5: not started) and batch names. `--reason` says why (shown by
 * `cogd status -hold`); `--now` also stops jobs already running, requeued without spending a retry.
 * The hold is recorded in the DB and whoever works on the home is woken to apply it.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { readOptions, resolveHome } from '../../config/index.js';
import { homeHolder, homePaths } from '../../daemon/home.js';
import { requestHold, requestRelease, type HoldRequest } from '../../daemon/holding.js';
import { UsageError } from '../../errors.js';
import { parseTarget } from '../../manifest/targets.js';
import { StateDB } from '../../state/db.js';

export function holdCommand(verb: 'hold' | 'release', texts: string[], flags: Record<string, unknown>): number {
  const options = readOptions(verb, flags).command;
  if (texts.length === 0) {
    throw new UsageError(
      `cogd ${verb} needs what to ${verb}`,
      'give run ids (12), job ids (12.5), watch ids (w3) or a batch name',
    );
  }
  const targets = texts.map(parseTarget);
  const home = resolveHome(options.home);
  const paths = homePaths(home);
  if (!existsSync(paths.db)) {
    process.stderr.write(`cogd ${verb}: nothing has run on ${home} (no ${paths.db})\n`);
    return 1;
  }
  const db = new StateDB(paths.db);
  let request: HoldRequest;
  try {
    request =
      verb === 'hold'
        ? requestHold(db, targets, {
            reason: options.reason ?? 'held by user',
            since: new Date().toISOString(),
            by: os.userInfo().username,
            now: options.now === true,
          })
        : requestRelease(db, targets);
  } finally {
    db.close();
  }
  // Whoever works on the home applies it at once (it also re-reads holds every second).
  const holder = homeHolder(home);
  if (request.changed && holder?.pid !== undefined) process.kill(holder.pid, 'SIGUSR2');
  for (const line of request.lines) process.stdout.write(`${line}\n`);
  if (request.unknown.length > 0) {
    const state = verb === 'hold' ? 'unfinished and not held' : 'held';
    process.stderr.write(
      `cogd ${verb}: nothing ${state} matches ${request.unknown.join(', ')} (see \`cogd status -hold\`)\n`,
    );
    return 1;
  }
  return 0;
}
