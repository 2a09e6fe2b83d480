/**
 * Where a watch's STAC documents go and what they are called: the item beside its COG, the
 * collection at the key the watch names in the output bucket (shared by every watch writing there).
 */
import { itemKey } from '../manifest/names.js';
import type { ConversionSettings } from '../types.js';
import { relativeHref } from './hrefs.js';

/** The collection's id: the output bucket and the collection's key, e.g. `cogs-collection`. */
export function collectionId(outputBucket: string, collectionKey: string): string {
  return `${outputBucket}-${collectionKey.replace(/\.json$/i, '')}`.replace(/[^A-Za-z0-9._-]+/g, '-');
}

/** The keys and hrefs of a COG's item under a watch's settings. */
export function itemPlace(
  cogKey: string,
  outputBucket: string,
  settings: Pick<ConversionSettings, 'stacItemSuffix' | 'stacCollection'>,
): { itemKey: string; collectionId: string; collectionHref: string } {
  const key = itemKey(cogKey, settings.stacItemSuffix);
  return {
    itemKey: key,
    collectionId: collectionId(outputBucket, settings.stacCollection),
    collectionHref: relativeHref(key, settings.stacCollection),
  };
}
