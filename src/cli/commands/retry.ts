/**
 * `cogd retry RUN`: re-runs the rows of a finished run that did not convert as a new run of the
 * same watch (`--rows 3,7`: those lines; `--all`: every row), from the manifest copy in the run's
 * log directory. The new run writes its own result CSVs; whoever works on the home is woken to
 * execute it, or the next `cogd start` / `cogd poll --wait` does.
 */
import { existsSync } from 'node:fs';
import { readOptions, resolveHome } from '../../config/index.js';
import { homeHolder, homePaths } from '../../daemon/home.js';
import { retryRun } from '../../daemon/retry.js';
import { CogdError } from '../../errors.js';
import { parseRun } from '../../manifest/targets.js';
import { StateDB } from '../../state/db.js';
import { createStorage } from '../../storage/s3.js';

export async function retryCommand(runArg: string, flags: Record<string, unknown>): Promise<number> {
  const options = readOptions('retry', flags).command;
  const runId = parseRun(runArg);
  const home = resolveHome(options.home);
  const paths = homePaths(home);
  if (!existsSync(paths.db)) throw new CogdError('NoState', `nothing has run on ${home} (no ${paths.db})`);
  const db = new StateDB(paths.db);
  try {
    const { run, lines } = await retryRun(
      { db, logDir: paths.logs, storageFor: (watch) => createStorage(watch.s3) },
      runId,
      { ...(options.rows === undefined ? {} : { rows: options.rows }), all: options.all === true },
    );
    const shown = lines.length > 12 ? `${lines.slice(0, 12).join(', ')}, …` : lines.join(', ');
    process.stdout.write(
      `run ${run.id} s3://${run.inputBucket}/${run.manifestKey}: retry of ${runId}, ${lines.length} ${lines.length === 1 ? 'row' : 'rows'} (lines ${shown}); logs in ${run.runDir}\n`,
    );
    // Whoever works on the home starts it now; with nobody there, the next start or poll does.
    const holder = homeHolder(home);
    if (holder?.pid !== undefined) process.kill(holder.pid, 'SIGUSR2');
    else if (holder === undefined) {
      process.stdout.write(
        "no daemon is running: `cogd start` (or `cogd poll --wait` with the watch's flags) runs it\n",
      );
    }
    return 0;
  } finally {
    db.close();
  }
}
