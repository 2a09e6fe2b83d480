/**
 * A watch's STAC 1.0.0 Collection, as pure functions: the lead reads the current document, calls
 * these, and writes the result back conditionally (If-Match), so two daemons adding items at once
 * never lose one. Nothing here touches S3.
 *
 * Extents only grow: an item added twice (a re-conversion) widens them again, and nothing shrinks
 * them — a collection's extent may be larger than its items, never smaller, which is what STAC
 * clients filtering by extent need.
 */
import type { BBox, Link, StacCollection } from './types.js';

export interface CollectionOptions {
  title?: string;
  /** An SPDX identifier, or "proprietary" / "various". @defaultValue "proprietary" */
  license?: string;
  /** Links the collection starts with (self, root, license…). */
  links?: Link[];
}

/** What a collection needs of an item: where it is (relative to the collection), where and when. */
export interface ItemSummary {
  href: string;
  /** Null for an image without georeferencing: it adds nothing to the spatial extent. */
  bbox: BBox | null | undefined;
  /** ISO 8601, UTC. */
  datetime: string;
}

/**
 * While no item with a bbox has been added, the spatial extent is the whole globe ("unknown", as
 * STAC asks for a bbox) and the collection says so in this field, so the first real bbox replaces
 * the globe instead of being swallowed by it. The field goes once a bbox is in.
 */
export const UNSET_SPATIAL = 'cogd:spatial_extent_unset';

const WORLD: BBox = [-180, -90, 180, 90];

/** A new, empty collection: spatial extent unset (the globe), temporal [null, null] (open both ways). */
export function newCollection(id: string, description: string, options: CollectionOptions = {}): StacCollection {
  return {
    type: 'Collection',
    stac_version: '1.0.0',
    stac_extensions: [],
    id,
    ...(options.title === undefined ? {} : { title: options.title }),
    description,
    license: options.license ?? 'proprietary',
    extent: { spatial: { bbox: [[...WORLD]] }, temporal: { interval: [[null, null]] } },
    links: [...(options.links ?? [])],
    [UNSET_SPATIAL]: true,
  };
}

/** A longitude range as a start and a length eastwards, length up to 360. */
interface Arc {
  start: number;
  end: number;
}

const normalize = (lon: number): number => (lon > 180 ? lon - 360 : lon);

/**
 * The smallest longitude range holding all of `bboxes` (west > east when it crosses ±180), and the
 * latitude range. Longitudes are arcs of a circle: the union is the circle less its largest gap, so
 * boxes at 170…175 and -175…-170 give 170…-170 (20°), not -175…175 (350°).
 */
export function unionBBox(bboxes: readonly BBox[]): BBox {
  const south = Math.min(...bboxes.map((b) => b[1]));
  const north = Math.max(...bboxes.map((b) => b[3]));
  const arcs: Arc[] = bboxes
    .map(([west, , east]) => ({ start: west, end: east >= west ? east : east + 360 }))
    .sort((a, b) => a.start - b.start);
  if (arcs.some((arc) => arc.end - arc.start >= 360)) return [-180, south, 180, north];
  const merged: Arc[] = [];
  for (const arc of arcs) {
    const last = merged[merged.length - 1];
    if (last !== undefined && arc.start <= last.end) last.end = Math.max(last.end, arc.end);
    else merged.push({ ...arc });
  }
  // The last arc may run past +180 over the first ones.
  while (merged.length > 1 && merged[merged.length - 1]!.end - 360 >= merged[0]!.start) {
    const first = merged.shift()!;
    const last = merged[merged.length - 1]!;
    last.end = Math.max(last.end, first.end + 360);
  }
  const last = merged[merged.length - 1]!;
  if (merged.length === 1 && last.end - last.start >= 360) return [-180, south, 180, north];
  // The largest gap between consecutive arcs (the one after the last wraps to the first).
  let gapAfter = merged.length - 1;
  let widest = merged[0]!.start + 360 - last.end;
  for (let i = 0; i + 1 < merged.length; i += 1) {
    const gap = merged[i + 1]!.start - merged[i]!.end;
    if (gap > widest) [gapAfter, widest] = [i, gap];
  }
  if (widest <= 0) return [-180, south, 180, north];
  const west = merged[(gapAfter + 1) % merged.length]!.start;
  const east = merged[gapAfter]!.end;
  return [normalize(west), south, normalize(east), north];
}

function instant(text: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new Error(`not an ISO 8601 datetime: "${text}"`);
  return ms;
}

/**
 * The collection with `items` in it: spatial extent grown to their bboxes (see unionBBox), temporal
 * interval widened to their datetimes, and an `item` link for each href it does not list yet (the
 * same href twice is one link). Returns a new document; the one given is not changed.
 */
export function addItems(collection: StacCollection, items: readonly ItemSummary[]): StacCollection {
  const next = structuredClone(collection);
  const bboxes = items.map((item) => item.bbox).filter((bbox): bbox is BBox => bbox !== null && bbox !== undefined);
  if (bboxes.length > 0) {
    const unset = next[UNSET_SPATIAL] === true;
    const [overall, ...clusters] = unset ? [] : next.extent.spatial.bbox;
    next.extent.spatial.bbox = [unionBBox(overall === undefined ? bboxes : [overall, ...bboxes]), ...clusters];
    delete next['cogd:spatial_extent_unset'];
  }
  if (items.length > 0) {
    const [start, end] = next.extent.temporal.interval[0] ?? [null, null];
    let first = start === null ? undefined : { text: start, ms: instant(start) };
    let last = end === null ? undefined : { text: end, ms: instant(end) };
    for (const { datetime } of items) {
      const ms = instant(datetime);
      if (first === undefined || ms < first.ms) first = { text: datetime, ms };
      if (last === undefined || ms > last.ms) last = { text: datetime, ms };
    }
    next.extent.temporal.interval[0] = [first?.text ?? null, last?.text ?? null];
  }
  const listed = new Set(next.links.filter((link) => link.rel === 'item').map((link) => link.href));
  for (const { href } of items) {
    if (listed.has(href)) continue;
    listed.add(href);
    next.links.push({ rel: 'item', href, type: 'application/geo+json' });
  }
  return next;
}
