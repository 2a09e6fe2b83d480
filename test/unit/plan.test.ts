import { describe, expect, it } from 'vitest';
import { buildGraph, jobNode, planRows, POST_NODE, readyNodes } from '../../src/dag/plan.js';
import { parseManifest } from '../../src/manifest/parse.js';

describe('planning', () => {
  it('makes a job per valid row and stores rejected rows failed with their reason', () => {
    const jobs = planRows(parseManifest('a/x.tif,3\nb/x.tif,1\nbad.png,3\n'));
    expect(jobs.map((j) => [j.line, j.state, j.imageKey, j.logName])).toEqual([
      [1, 'idle', 'a/x.tif', 'x'],
      [2, 'idle', 'b/x.tif', 'x-line2'],
      [3, 'failed', null, null],
    ]);
    expect(jobs[2]!.error).toMatch(/does not name a GeoTIFF/);
  });

  it('builds a DAG whose post node depends on every job', () => {
    const graph = buildGraph([1, 2, 3]);
    expect(graph.nodeCount()).toBe(4);
    expect(graph.predecessors(POST_NODE)?.sort()).toEqual([jobNode(1), jobNode(2), jobNode(3)]);
    expect(readyNodes(graph, new Set()).sort()).toEqual([jobNode(1), jobNode(2), jobNode(3)]);
    expect(readyNodes(graph, new Set([jobNode(1), jobNode(2)]))).toEqual([jobNode(3)]);
    expect(readyNodes(graph, new Set([jobNode(1), jobNode(2), jobNode(3)]))).toEqual([POST_NODE]);
  });

  it('makes post ready at once for a run with no jobs', () => {
    expect(readyNodes(buildGraph([]), new Set())).toEqual([POST_NODE]);
  });
});
