/**
 * Planning a run: every manifest row becomes a job record (rejected rows straight away failed, with
 * their reason), and the run's DAG has one node per job plus a final `post` node that depends on all.
 */
import { Graph } from '@dagrejs/graphlib';
import { readFile } from 'node:fs/promises';
import { describeError } from '../errors.js';
import { logNames } from '../manifest/names.js';
import { parseManifest, type ManifestRow } from '../manifest/parse.js';
import type { NewJob } from '../state/db.js';

export const POST_NODE = 'post';

export const jobNode = (jobId: number): string => `job:${jobId}`;

/** The job records of a manifest's rows, or the reason the whole manifest was rejected. */
export function planRows(rows: ManifestRow[]): NewJob[] {
  const valid = rows.filter((row) => row.key !== undefined) as Array<ManifestRow & { key: string }>;
  const names = logNames(valid);
  return rows.map((row) =>
    row.key === undefined
      ? {
          line: row.line,
          raw: row.raw,
          imageKey: null,
          bands: null,
          logName: null,
          state: 'failed',
          error: row.reason ?? 'rejected',
        }
      : {
          line: row.line,
          raw: row.raw,
          imageKey: row.key,
          bands: row.bands ?? null,
          logName: names.get(row.line) ?? null,
          state: 'idle',
          error: null,
        },
  );
}

export type ManifestPlan = { jobs: NewJob[]; error: null } | { jobs: []; error: string };

export async function planManifest(file: string): Promise<ManifestPlan> {
  return planManifestBytes(await readFile(file));
}

/** planManifest of a manifest's bytes (a dry run reads them from S3, never to a file). */
export function planManifestBytes(bytes: Buffer): ManifestPlan {
  let rows: ManifestRow[];
  try {
    rows = parseManifest(bytes);
  } catch (error) {
    return { jobs: [], error: describeError(error) };
  }
  if (rows.length === 0) return { jobs: [], error: 'the manifest is empty: it lists no images' };
  return { jobs: planRows(rows), error: null };
}

/** The run's DAG over job ids. */
export function buildGraph(jobIds: number[]): Graph {
  const graph = new Graph({ directed: true });
  graph.setNode(POST_NODE);
  for (const id of jobIds) {
    graph.setNode(jobNode(id));
    graph.setEdge(jobNode(id), POST_NODE);
  }
  return graph;
}

/** Nodes whose every predecessor is done and which are not done themselves. */
export function readyNodes(graph: Graph, done: ReadonlySet<string>): string[] {
  return graph.nodes().filter((node) => !done.has(node) && (graph.predecessors(node) ?? []).every((p) => done.has(p)));
}
