/**
 * Hrefs between objects of one bucket. STAC hrefs are URI references, so each key segment is
 * percent-encoded: a key with a space, `#`, `?` or `%` in it still names exactly that object
 * (`a b#1.tif` → `a%20b%231.tif`); keys of plain letters, digits, `-`, `_`, `.` read as they are.
 */
/** A key as a URI path: each `/`-separated segment percent-encoded. */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** The absolute `s3://bucket/key` href of an object. */
export function s3Href(bucket: string, key: string): string {
  return `s3://${bucket}/${encodeKey(key)}`;
}

/**
 * The href from the document at `fromKey` to the object at `toKey`, relative to the document's
 * "directory" (`a/b/item.json` → `a/c.json` is `../c.json`; a sibling is `./name`), as STAC
 * resolves relative hrefs against the document's own location. Keys are compared segment by
 * segment, never normalized: S3 keys may hold `//` or `.` segments, and those name other objects.
 */
export function relativeHref(fromKey: string, toKey: string): string {
  const from = fromKey.split('/').slice(0, -1);
  const to = toKey.split('/');
  let common = 0;
  while (common < from.length && common < to.length - 1 && from[common] === to[common]) common += 1;
  const rest = encodeKey(to.slice(common).join('/'));
  return common === from.length ? `./${rest}` : `${'../'.repeat(from.length - common)}${rest}`;
}
