import { describe, expect, it } from 'vitest';
import { keyMatcher, literalPrefix } from '../../src/watch/glob.js';

describe('glob', () => {
  it('matches a pattern without "/" against the base name in any folder', () => {
    const match = keyMatcher('*raw.csv');
    expect(match('files-raw.csv')).toBe(true);
    expect(match('path/to/files-raw.csv')).toBe(true);
    expect(match('path/to/notes.csv')).toBe(false);
    expect(match('path/raw.csv/x.tif')).toBe(false);
  });

  it('matches a pattern with "/" against the whole key', () => {
    const match = keyMatcher('jobs/*raw.csv');
    expect(match('jobs/a-raw.csv')).toBe(true);
    expect(match('jobs/deep/a-raw.csv')).toBe(false);
    expect(match('other/jobs/a-raw.csv')).toBe(false);
    expect(keyMatcher('jobs/**/*raw.csv')('jobs/deep/er/a-raw.csv')).toBe(true);
  });

  it('lists only under the literal prefix', () => {
    expect(literalPrefix('*raw.csv')).toBe('');
    expect(literalPrefix('x*raw.csv')).toBe('');
    expect(literalPrefix('jobs/*raw.csv')).toBe('jobs/');
    expect(literalPrefix('jobs/2026-*/**/*.csv')).toBe('jobs/2026-');
    expect(literalPrefix('a/{b,c}/x.csv')).toBe('a/');
    expect(literalPrefix('a/b/x-raw.csv')).toBe('a/b/x-raw.csv');
  });
});
