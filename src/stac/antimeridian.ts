/**
 * From an image's outline in longitude/latitude to a GeoJSON geometry and bbox that STAC clients
 * draw correctly (RFC 7946 §3.1.9, §5.2): a footprint that crosses the antimeridian is cut there
 * into a MultiPolygon, one part on each side, each closed along ±180; its bbox has west > east.
 *
 * How the ring is read:
 * - Longitudes are brought into [-180, 180]; consecutive points more than 180° apart are taken as
 *   a crossing of ±180 (an image's edge is densified, so no edge spans half the globe). The crossing
 *   latitude is interpolated linearly in longitude/latitude between the two points.
 * - A ring that winds once around the globe (its longitudes, unwrapped, end 360° from where they
 *   started) encloses a pole: the pole on the side of its mean latitude. Best effort: with one crossing
 *   the ring is closed through that pole (along ±180 up to ±90 and back along the pole's line); with
 *   more crossings (an outline wiggling across ±180 while circling a pole — not met in practice)
 *   the footprint is the whole cap from the ring's lowest latitude to the pole, which contains it.
 *   Either way the bbox spans all longitudes, -180 to 180, up to the pole.
 * - Rings come out counter-clockwise (the right-hand rule); parts with no area (an outline that
 *   only touches ±180) are dropped. Coordinates are rounded to 7 decimals (~1 cm).
 */
import type { BBox, MultiPolygon, Polygon, Position } from './types.js';

export interface Footprint {
  geometry: Polygon | MultiPolygon | null;
  bbox: BBox | null;
}

export const NO_FOOTPRINT: Footprint = { geometry: null, bbox: null };

/** 7 decimals of a degree: about 1 cm on the ground, finer than any image cogd converts. */
const round7 = (n: number): number => Math.round(n * 1e7) / 1e7 || 0; // `|| 0`: no -0 in the JSON

function normalizeLon(lon: number): number {
  if (lon >= -180 && lon <= 180) return lon;
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

const same = (a: Position, b: Position): boolean => a[0] === b[0] && a[1] === b[1];

/** Twice the signed area (shoelace); positive when counter-clockwise. */
function signedArea(ring: readonly Position[]): number {
  let sum = 0;
  for (let i = 1; i < ring.length; i += 1) {
    const [x0, y0] = ring[i - 1]!;
    const [x1, y1] = ring[i]!;
    sum += x0 * y1 - x1 * y0;
  }
  return sum;
}

/** Consecutive duplicates removed and the ring closed. */
function tidy(points: readonly Position[]): Position[] {
  const ring: Position[] = [];
  for (const point of points) if (ring.length === 0 || !same(ring[ring.length - 1]!, point)) ring.push(point);
  if (ring.length > 0 && !same(ring[0]!, ring[ring.length - 1]!)) ring.push(ring[0]!);
  return ring;
}

/** The ring with longitudes made continuous (no jumps over ±180), for winding, orientation and bbox. */
function unwrap(ring: readonly Position[]): Position[] {
  const out: Position[] = [];
  for (const [lon, lat] of ring) {
    const previous = out[out.length - 1];
    if (previous === undefined) {
      out.push([lon, lat]);
      continue;
    }
    let delta = lon - normalizeLon(previous[0]);
    if (delta > 180) delta -= 360;
    else if (delta < -180) delta += 360;
    out.push([previous[0] + delta, lat]);
  }
  return out;
}

/** The ring cut where it crosses ±180: open segments, each starting and ending on ±180 if there were crossings. */
function split(ring: readonly Position[]): { segments: Position[][]; crossings: number } {
  const segments: Position[][] = [[ring[0]!]];
  let crossings = 0;
  for (let i = 1; i < ring.length; i += 1) {
    const [x0, y0] = ring[i - 1]!;
    const [x1, y1] = ring[i]!;
    const delta = x1 - x0;
    if (Math.abs(delta) > 180) {
      const side = delta < 0 ? 180 : -180; // eastward over 180 shows as a jump down, and back
      const x1Unwrapped = x1 + (delta < 0 ? 360 : -360);
      const lat = y0 + ((side - x0) / (x1Unwrapped - x0)) * (y1 - y0);
      segments[segments.length - 1]!.push([side, lat]);
      segments.push([[-side, lat]]);
      crossings += 1;
    }
    segments[segments.length - 1]!.push(ring[i]!);
  }
  if (crossings > 0) {
    // The ring is closed: its last segment runs on into its first.
    const last = segments.pop()!;
    segments[0] = [...last, ...segments[0]!.slice(1)];
  }
  return { segments, crossings };
}

/**
 * The segments of a counter-clockwise ring joined into closed parts along ±180. The interior lies to
 * the left, so a segment ending on +180 continues northwards up the meridian to the nearest segment
 * starting there, and one ending on -180 southwards.
 */
function join(segments: readonly Position[][]): Position[][] {
  const used = new Set<number>();
  const parts: Position[][] = [];
  const next = (from: number, first: number): number | undefined => {
    const [x, y] = segments[from]![segments[from]!.length - 1]!;
    let best: number | undefined;
    segments.forEach((segment, j) => {
      const [sx, sy] = segment[0]!;
      if ((used.has(j) && j !== first) || sx > 0 !== x > 0 || (x > 0 ? sy < y : sy > y)) return;
      const bestY = best === undefined ? undefined : segments[best]![0]![1];
      if (bestY === undefined || (x > 0 ? sy < bestY : sy > bestY)) best = j;
    });
    return best;
  };
  for (let first = 0; first < segments.length; first += 1) {
    if (used.has(first)) continue;
    const part: Position[] = [];
    let at: number | undefined = first;
    while (at !== undefined) {
      used.add(at);
      part.push(...segments[at]!);
      const following = next(at, first);
      at = following === first ? undefined : following;
    }
    parts.push(part);
  }
  return parts;
}

/**
 * The geometry and bbox of an outline given as [lon, lat] points in order (points gdaltransform
 * could not transform as null, left out). Fewer than 3 distinct points: no footprint.
 */
export function footprintOfRing(points: ReadonlyArray<Position | null>): Footprint {
  const valid = points.filter(
    (p): p is Position => p !== null && Number.isFinite(p[0]) && Number.isFinite(p[1]) && Math.abs(p[1]) <= 90,
  );
  let ring = tidy(valid.map(([lon, lat]) => [normalizeLon(lon), lat]));
  if (ring.length < 4) return NO_FOOTPRINT;
  let unwrapped = unwrap(ring);
  const winding = Math.round((unwrapped[unwrapped.length - 1]![0] - unwrapped[0]![0]) / 360);
  let parts: Position[][];
  let west = -180;
  let east = 180;
  if (winding === 0) {
    if (signedArea(unwrapped) < 0) {
      ring = ring.reverse();
      unwrapped = unwrap(ring);
    }
    const { segments, crossings } = split(ring);
    parts = crossings === 0 ? [ring] : join(segments);
    const lons = unwrapped.map(([lon]) => lon);
    const [low, high] = [Math.min(...lons), Math.max(...lons)];
    if (high - low < 360) [west, east] = [normalizeLon(low), normalizeLon(high)];
  } else {
    const lats = ring.map(([, lat]) => lat);
    const north = lats.reduce((a, b) => a + b, 0) >= 0;
    const pole = north ? 90 : -90;
    const { segments, crossings } = split(ring);
    const only = segments[0]!;
    if (crossings === 1) {
      const [start, end] = [only[0]!, only[only.length - 1]!];
      parts = [[...only, [end[0], pole], [start[0], pole]]];
    } else {
      const edge = north ? Math.min(...lats) : Math.max(...lats);
      parts = [
        [
          [-180, edge],
          [180, edge],
          [180, pole],
          [-180, pole],
        ],
      ];
    }
  }
  const rings = parts
    .map((part) => tidy(part.map(([lon, lat]): Position => [round7(lon), round7(lat)])))
    .filter((part) => part.length >= 4 && Math.abs(signedArea(part)) > 1e-12)
    .map((part) => (signedArea(part) < 0 ? part.reverse() : part));
  if (rings.length === 0) return NO_FOOTPRINT;
  const lats = rings.flat().map(([, lat]) => lat);
  const bbox: BBox = [round7(west), Math.min(...lats), round7(east), Math.max(...lats)];
  const geometry: Polygon | MultiPolygon =
    rings.length === 1
      ? { type: 'Polygon', coordinates: [rings[0]!] }
      : { type: 'MultiPolygon', coordinates: rings.map((part) => [part]) };
  return { geometry, bbox };
}
