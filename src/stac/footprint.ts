/**
 * An image's footprint in EPSG:4326 (OGC:CRS84 order: longitude, latitude) for its STAC item.
 *
 * The outline is densified in pixel space before it is reprojected: a straight image edge is a
 * curve in longitude/latitude (UTM near a zone's edge, polar stereographic, anything through GCPs),
 * and four corners alone would cut parts of the image off the footprint. One `gdaltransform`
 * process per image transforms every point of the outline, with the file's own georeferencing
 * (its geotransform and CRS, or its GCPs) — the same transformation GDAL's tools use, so the
 * footprint agrees with what gdalwarp or QGIS would draw.
 */
import path from 'node:path';
import { spawnProgram } from '../util/spawner.js';
import { footprintOfRing, NO_FOOTPRINT, type Footprint } from './antimeridian.js';
import { rasterFacts } from './gdalinfo.js';
import type { Position } from './types.js';

export { footprintOfRing, type Footprint } from './antimeridian.js';

/**
 * Points per edge of the outline, both corners included: 21 puts one every 5 % of an edge, which
 * keeps the footprint within a few metres of the true curved edge for UTM-sized images, and 80
 * distinct points are still a small item.
 */
export const EDGE_POINTS = 21;

/** gdaltransform on 80 points takes milliseconds; a minute means it hangs (a network CRS grid?). */
export const FOOTPRINT_TIMEOUT_MS = 60_000;

export interface FootprintOptions {
  /** @defaultValue FOOTPRINT_TIMEOUT_MS */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Extra environment for gdaltransform (PROJ_DATA, PROJ_NETWORK…). */
  env?: Record<string, string>;
}

/**
 * The outline of a `width` × `height` image in pixel/line coordinates (pixel corners: (0, 0) is
 * the top-left corner of the first pixel), clockwise from the top-left corner as the image is
 * displayed, `perEdge` points per edge, closed: 4 × (perEdge − 1) + 1 points.
 */
export function outline(width: number, height: number, perEdge = EDGE_POINTS): Position[] {
  const steps = Math.max(1, Math.floor(perEdge) - 1);
  const corners: Position[] = [
    [0, 0],
    [width, 0],
    [width, height],
    [0, height],
  ];
  const points: Position[] = [];
  corners.forEach(([x0, y0], i) => {
    const [x1, y1] = corners[(i + 1) % corners.length]!;
    for (let step = 0; step < steps; step += 1) {
      const t = step / steps;
      points.push([x0 + (x1 - x0) * t, y0 + (y1 - y0) * t]);
    }
  });
  points.push([0, 0]);
  return points;
}

/** gdaltransform's output: `lon lat` per input line, or `transformation failed.` (→ null). */
export function parseTransformed(stdout: string): Array<Position | null> {
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [x, y] = line.split(/\s+/).map(Number);
      return x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y) ? [x, y] : null;
    });
}

/**
 * The footprint of `file` (a COG or its input) given its `gdalinfo -json` document (text or
 * parsed). An image with no georeferencing — neither a geotransform nor GCPs with a CRS — has
 * none: `{ geometry: null, bbox: null }`, and gdaltransform is not run. Points gdaltransform cannot
 * transform (off the projection's valid area) are left out of the outline. Rejects when
 * gdaltransform fails, times out or is aborted.
 */
export async function footprint(file: string, gdalinfo: unknown, options: FootprintOptions = {}): Promise<Footprint> {
  const facts = rasterFacts(gdalinfo);
  if (facts.georeferencing === null) return NO_FOOTPRINT;
  const input = outline(facts.width, facts.height)
    .map(([x, y]) => `${x} ${y}`)
    .join('\n');
  // Started from the spawner helper (src/util/spawner.ts), as GDAL's other commands are.
  const { signal } = options;
  signal?.throwIfAborted();
  const { pid, ended } = await spawnProgram({
    command: 'gdaltransform',
    // An absolute path: a file name starting with "-" must not be read as an option.
    args: ['-t_srs', 'OGC:CRS84', '-output_xy', path.resolve(file)],
    env: { ...process.env, GDAL_PAM_ENABLED: 'NO', ...options.env },
    input: `${input}\n`,
    captureStdout: true,
    captureStderr: true,
  });
  const limit = options.timeoutMs ?? FOOTPRINT_TIMEOUT_MS;
  let why: string | undefined;
  const kill = (reason: string): void => {
    why ??= reason;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  };
  const stop = (): void => kill('was stopped');
  const timer = setTimeout(() => kill(`timed out after ${limit} ms`), limit);
  signal?.addEventListener('abort', stop, { once: true });
  if (signal?.aborted === true) stop();
  const result = await ended.finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  });
  if (why !== undefined || result.error !== undefined || result.exitCode !== 0) {
    const how =
      why ??
      result.error ??
      (result.signal !== undefined ? `killed by ${result.signal}` : `exit code ${result.exitCode}`);
    const stderr = result.stderr.trim();
    throw new Error(`gdaltransform on ${file} failed (${how})${stderr === '' ? '' : `: ${stderr}`}`);
  }
  const { stdout } = result;
  return footprintOfRing(parseTransformed(stdout));
}
