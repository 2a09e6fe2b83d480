/**
 * Submitting a batch: one `condor_submit -terse` per batch of rows, `queue ... from` an item file.
 * Every step is in the state DB before anything depends on it:
 *
 *   batch N recorded (which job is which proc)  →  condor_submit  →  cluster recorded
 *
 * A crash between the first and the last is resolved from the submit events, which carry the note
 * `cogd run R batch N` (`submit_event_notes`, see `submitNoteBatch`); a batch with no submit event
 * after the log was read to its end never reached the queue and is forgotten (`forgetUnconfirmed`).
 */
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CogdError, describeError } from '../../errors.js';
import type { Log } from '../../log/index.js';
import type { StateDB } from '../../state/db.js';
import { crashPoint } from '../../util/crash.js';
import type { Waiter } from '../batch.js';
import { formGroups, GROUP_TEMPLATE, GROUP_WORKER, groupBlocks, groupName, groupsDir } from './groups.js';
import { itemLine, renderSubmit, TEMPLATES_DIR } from './render.js';
import { checkBringsFacts, forgetFacts } from './stac.js';
import { parseSubmitOutput } from './tools.js';

/** The run a batch belongs to: where its files go and what its submit description is filled with. */
export interface SubmitTarget {
  runId: number;
  runDir: string;
  fields: Record<string, string>;
  /** Rows one proc converts (`--rows-per-job`); above 1, procs convert groups (`groups.ts`). */
  rowsPerJob: number;
}

export class Submitter {
  private template: Promise<string> | undefined;
  private groupTemplate: Promise<string> | undefined;

  constructor(
    private readonly db: StateDB,
    private readonly log: Log,
    /** The submit description template. @defaultValue submit-templates/cog.sub */
    private readonly submitTemplate: string | undefined,
  ) {}

  /**
   * Submits one batch of a run's rows. On success each row's job is recorded as `C.P` of the new
   * cluster and its `run` waits for events; on failure nothing reached the queue (condor_submit is
   * all or nothing): the batch is forgotten and every row's waiter rejected, for the scheduler to
   * retry.
   */
  async submit(target: SubmitTarget, batch: Waiter[]): Promise<void> {
    const { runId, runDir } = target;
    // One proc per row, or per group of rows: `procs[i]` is the proc of `rows[i]`.
    const { groups, absent } =
      target.rowsPerJob > 1
        ? await formGroups(batch, target.rowsPerJob, (jobId) => this.db.jobError(jobId) !== null)
        : { groups: batch.map((w) => [w]), absent: new Set<number>() };
    const rows = groups.flat();
    const procs = groups.flatMap((group, proc) => group.map(() => proc));
    const number = this.db.recordCondorBatch(
      runId,
      rows.map((w) => w.job.jobId),
      procs,
    );
    crashPoint('condor:batch-recorded');
    const base = path.join(runDir, 'condor', `batch-${number}`);
    try {
      // A new attempt's facts only: an earlier attempt's cannot pass for them.
      await Promise.all(rows.map(({ job }) => forgetFacts(runDir, job.files.name)));
      let description: string;
      if (target.rowsPerJob > 1) {
        const { blocks, rowsFiles } = groupBlocks(
          runDir,
          number,
          groups,
          target.fields['input_url']!,
          target.fields['worker']!,
          absent,
        );
        await mkdir(groupsDir(runDir), { recursive: true });
        await Promise.all(rowsFiles.map(([file, text]) => writeFile(file, text)));
        const header = renderSubmit(await this.loadGroupTemplate(), {
          ...target.fields,
          group_worker: GROUP_WORKER,
          groups_dir: groupsDir(runDir),
          group_timeout: String(Number(target.fields['job_timeout']) * target.rowsPerJob),
          submit_notes: `cogd run ${runId} batch ${number}`,
        });
        description = `${header}\n${blocks}`;
      } else {
        const items = batch.map(({ job }) =>
          itemLine({ inputKey: job.imageKey, cogKey: job.cogKey, previewKey: job.previewKey, logName: job.files.name }),
        );
        await writeFile(`${base}.items`, `${items.join('\n')}\n`);
        const template = await this.loadTemplate();
        checkBringsFacts(template, target.fields);
        description = renderSubmit(template, {
          ...target.fields,
          items_file: `${base}.items`,
          submit_notes: `cogd run ${runId} batch ${number}`,
        });
      }
      await writeFile(`${base}.sub`, description);
      const result = await execa('condor_submit', ['-terse', `${base}.sub`], {
        cwd: runDir,
        reject: false,
        timeout: 300_000,
      });
      if (result.exitCode === 0) crashPoint('condor:submitted');
      const parsed = parseSubmitOutput(result.stdout);
      const cluster = parsed.clusters[0];
      if (result.exitCode !== 0 || cluster === undefined) {
        const said = [...parsed.messages, ...result.stderr.split('\n')].map((l) => l.trim()).filter((l) => l !== '');
        throw new CogdError(
          'CondorSubmitFailed',
          `condor_submit ${path.basename(base)}.sub failed (exit ${result.exitCode ?? result.signal ?? '?'}): ${said.slice(0, 3).join(' / ') || 'no output'}`,
          {
            hint: 'check that this machine is an HTCondor access point (condor_q works) and the submit template',
          },
        );
      }
      const expected = groups.length;
      if (cluster.jobs !== null && cluster.jobs !== expected) {
        this.log.warn('Condor:SubmitCount', {
          run: runId,
          batch: number,
          cluster: cluster.cluster,
          submitted: cluster.jobs,
          expected,
        });
      }
      this.db.setCondorCluster(runId, number, cluster.cluster);
      this.log.info('Condor:Submitted', {
        run: runId,
        batch: number,
        cluster: cluster.cluster,
        jobs: expected,
        rows: rows.length,
      });
      groups.forEach((group, proc) => {
        for (const { job } of group) {
          job.files.log(
            target.rowsPerJob > 1
              ? `submitted in HTCondor job ${cluster.cluster}.${proc} (batch ${number}, group ${groupName(number, proc)} of ${group.length} row${group.length === 1 ? '' : 's'})`
              : `submitted as HTCondor job ${cluster.cluster}.${proc} (batch ${number})`,
          );
        }
      });
    } catch (error) {
      this.db.clearCondorBatch(runId, number);
      this.log.warn('Condor:SubmitFailed', { run: runId, batch: number, reason: describeError(error) });
      for (const waiter of batch) waiter.reject(error);
    }
  }

  /**
   * Forgets the run's batches that were recorded but have no cluster once its event log was read
   * to the end: condor_submit was interrupted before anything reached the queue, so their rows
   * are submitted again.
   */
  forgetUnconfirmed(runId: number): void {
    for (const batch of this.db.unconfirmedCondorBatches(runId)) {
      this.log.warn('Condor:BatchUnconfirmed', {
        run: runId,
        batch,
        reason:
          'condor_submit was interrupted and the event log has no submit event of this batch: its rows are submitted again',
      });
      this.db.clearCondorBatch(runId, batch);
    }
  }

  private loadGroupTemplate(): Promise<string> {
    this.groupTemplate ??= readFile(GROUP_TEMPLATE, 'utf8').catch((error: unknown) => {
      this.groupTemplate = undefined;
      throw new CogdError(
        'Template',
        `cannot read the group submit template ${GROUP_TEMPLATE}: ${describeError(error)}`,
      );
    });
    return this.groupTemplate;
  }

  private loadTemplate(): Promise<string> {
    this.template ??= readFile(this.submitTemplate ?? path.join(TEMPLATES_DIR, 'cog.sub'), 'utf8').catch(
      (error: unknown) => {
        this.template = undefined;
        throw new CogdError(
          'Template',
          `cannot read the submit template ${this.submitTemplate}: ${describeError(error)}`,
        );
      },
    );
    return this.template;
  }
}
