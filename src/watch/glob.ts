/**
 * Which keys a watch's pattern names, and the smallest listing that finds them.
 *
 * A pattern without `/` (the documented `-p "*raw.csv"`) matches a key's base name in any folder,
 * as the reference tool matched `path/to/files-raw.csv`; a pattern with `/` matches the whole key.
 */
import path from 'node:path';
import { minimatch } from 'minimatch';

/** Characters that start glob syntax in minimatch (extglobs begin with one of `?*+@!`). */
const MAGIC = /[*?[\]{}()!+@\\]/;

/** The literal start of a pattern: S3 lists only keys beginning with it. */
export function literalPrefix(pattern: string): string {
  if (!pattern.includes('/')) return '';
  const magic = pattern.search(MAGIC);
  return magic === -1 ? pattern : pattern.slice(0, magic);
}

export function keyMatcher(pattern: string): (key: string) => boolean {
  const options = { dot: true, nocomment: true, nonegate: true };
  if (!pattern.includes('/')) {
    return (key) => minimatch(path.posix.basename(key), pattern, options);
  }
  return (key) => minimatch(key, pattern, options);
}
