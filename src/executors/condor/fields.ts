/**
 * The `{{fields}}` of a run's submit descriptions: cogd's settings and the run's buckets, paths and
 * batch name (the item data carries the per-row keys). Computed once per followed run, with the
 * worker script written next to the run's logs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CogdError, PermanentError } from '../../errors.js';
import type { StateDB } from '../../state/db.js';
import type { S3Settings } from '../../types.js';
import { renderWorker } from './render.js';
import { factsDir, stacSubmitFields } from './stac.js';

/** The settings that become submit fields (part of `CondorOptions`). */
export interface FieldSettings {
  /** The image execute nodes run the worker in (config's DEFAULT_CONTAINER_IMAGE by default). */
  containerImage: string;
  requestCpus: number;
  requestMemory: string;
  requestDisk: string;
  /** Holds after which HTCondor removes a job (periodic_remove). @defaultValue 5 */
  maxHolds: number;
  /** First release delay in seconds; doubles with each hold. @defaultValue 60 */
  releaseDelayS: number;
  /** allowed_execute_duration, seconds. */
  jobTimeoutS: number;
}

/** HTCondor's S3 URL of a bucket: `s3://host[:port]/bucket` for an endpoint, the AWS virtual-host form otherwise. */
export function condorS3Url(s3: S3Settings, bucket: string): string {
  if (s3.endpoint === undefined) return `s3://${bucket}.s3.${s3.region}.amazonaws.com`;
  return `s3://${new URL(s3.endpoint).host}/${bucket}`;
}

/**
 * A run's directory and submit fields; writes `<run dir>/condor/cog-worker.sh` (and creates
 * `condor/facts/`, where the STAC facts come back, when the run's watch writes items).
 */
export async function runFields(
  db: StateDB,
  settings: FieldSettings,
  runId: number,
): Promise<{ runDir: string; fields: Record<string, string>; rowsPerJob: number }> {
  const run = db.run(runId);
  const watch = run === undefined ? undefined : db.watch(run.watchId);
  if (run === undefined || watch === undefined) throw new CogdError('Condor', `run ${runId} is not in the state DB`);
  const { accessKeyFile, secretKeyFile } = watch.s3;
  if (accessKeyFile === undefined || secretKeyFile === undefined) {
    throw new PermanentError(
      'CondorCredentials',
      'the condor executor needs the S3 keys in files (HTCondor reads them through aws_access_key_id_file)',
      {
        hint: 'start the watch with -a/--access-key FILE and -s/--secret-key FILE',
      },
    );
  }
  const condorDir = path.join(run.runDir, 'condor');
  await mkdir(condorDir, { recursive: true });
  const worker = path.join(condorDir, 'cog-worker.sh');
  const conversion = db.runConversion(runId) ?? watch.conversion;
  await writeFile(worker, await renderWorker(conversion), { mode: 0o755 });
  if (conversion.stac) await mkdir(factsDir(run.runDir), { recursive: true });
  return {
    runDir: run.runDir,
    // Fixed when the run was claimed, as the rest of its conversion settings.
    rowsPerJob: conversion.rowsPerJob,
    fields: {
      container_image: settings.containerImage,
      worker,
      access_key_file: accessKeyFile,
      secret_key_file: secretKeyFile,
      input_url: condorS3Url(watch.s3, run.inputBucket),
      output_url: condorS3Url(watch.s3, run.outputBucket),
      run_dir: run.runDir,
      event_log: path.join(run.runDir, 'condor.log'),
      batch_name: run.batchName,
      request_cpus: String(settings.requestCpus),
      request_memory: settings.requestMemory,
      request_disk: settings.requestDisk,
      job_timeout: String(settings.jobTimeoutS),
      max_holds: String(settings.maxHolds),
      release_base: String(settings.releaseDelayS),
      release_splay: String(settings.releaseDelayS),
      ...stacSubmitFields(run.runDir, conversion.stac),
    },
  };
}
