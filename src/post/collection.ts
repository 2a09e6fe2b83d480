/**
 * The STAC collection of an output bucket, extended by each run's post step with its items: the
 * extents grow, an item link per item. Several daemons (homes, access points) may finish runs into
 * the same collection at once: the update holds the collection's lock (shared-object.ts).
 */
import type { ItemSummary } from '../executors/types.js';
import { addItems, newCollection } from '../stac/collection.js';
import { relativeHref, s3Href } from '../stac/hrefs.js';
import { collectionId } from '../stac/publish.js';
import type { BBox, StacCollection } from '../stac/types.js';
import type { Storage } from '../storage/s3.js';
import { updateSharedJson } from './shared-object.js';

export async function extendCollection(
  storage: Storage,
  bucket: string,
  collectionKey: string,
  items: readonly ItemSummary[],
): Promise<StacCollection> {
  const id = collectionId(bucket, collectionKey);
  const summaries = items.map((item) => ({
    href: relativeHref(collectionKey, item.key),
    bbox: item.bbox as BBox | null,
    datetime: item.datetime,
  }));
  return updateSharedJson<StacCollection>(storage, bucket, collectionKey, (current) =>
    addItems(
      current ??
        newCollection(id, `Cloud optimized GeoTIFFs and their previews that cogd converted into s3://${bucket}`, {
          title: `cogd: s3://${bucket}`,
          links: [
            { rel: 'self', href: s3Href(bucket, collectionKey), type: 'application/json' },
            { rel: 'root', href: relativeHref(collectionKey, collectionKey), type: 'application/json' },
          ],
        }),
      summaries,
    ),
  );
}
