/**
 * The HTCondor simulator (test/fixtures/condor-sim) for end-to-end suites: each call of `simEnv`
 * gives a fresh state directory and the PATH that puts the simulated tools first; `stopSimulators`
 * (an afterAll) kills every simulated schedd those directories started, so none outlives its file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from './helpers.js';

export const SIM = path.join(ROOT, 'test/fixtures/condor-sim');
const simDirs: string[] = [];

/** The environment that puts the simulator on PATH, with its own state directory. */
export async function simEnv(knobs: Record<string, string> = {}): Promise<Record<string, string>> {
  const dir = await tempDir('condor-sim-');
  simDirs.push(dir);
  return {
    PATH: `${SIM}:${process.env['PATH'] ?? ''}`,
    CONDOR_SIM_DIR: dir,
    CONDOR_SIM_START_MS: '50',
    CONDOR_SIM_RELEASE_MS: '200',
    ...knobs,
  };
}

/** Kills the simulated schedds of every directory `simEnv` made in this file. */
export function stopSimulators(): void {
  for (const dir of simDirs) {
    for (const file of existsSync(dir) ? readdirSync(dir).filter((f) => /^schedd-\d+\.pid$/.test(f)) : []) {
      try {
        process.kill(Number(readFileSync(path.join(dir, file), 'utf8')), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
