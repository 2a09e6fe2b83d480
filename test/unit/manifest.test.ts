import { describe, expect, it } from 'vitest';
import { parseManifest, validateRecord } from '../../src/manifest/parse.js';

describe('validateRecord', () => {
  it('accepts a key and a band count', () => {
    expect(validateRecord(['a/b/c.tif', '3'])).toEqual({ key: 'a/b/c.tif', bands: 3 });
    expect(validateRecord(['x.TIFF', '1'])).toEqual({ key: 'x.TIFF', bands: 1 });
  });

  it.each([
    [['a.tif'], /expected 2 columns .* found 1/],
    [['a.tif', '3', 'extra'], /expected 2 columns .* found 3/],
    [['/abs/a.tif', '3'], /starts with "\/"/],
    [['a/../b.tif', '3'], /"\." or "\.\." segment/],
    [['./b.tif', '3'], /"\." or "\.\." segment/],
    [['a//b.tif', '3'], /empty path segment/],
    [['a\tb.tif', '3'], /control character/],
    [['a\u007fb.tif', '3'], /control character/],
    [['a.png', '3'], /does not name a GeoTIFF/],
    [['a.tif.bak', '3'], /does not name a GeoTIFF/],
    [['a.tif', 'three'], /band count "three" .* not a positive whole number/],
    [['a.tif', '0'], /not a positive whole number/],
    [['a.tif', '-3'], /not a positive whole number/],
    [['a.tif', '2.5'], /not a positive whole number/],
    [['', '3'], /image key .* is empty/],
  ])('rejects %j', (fields, reason) => {
    const result = validateRecord(fields);
    expect(result).toHaveProperty('reason');
    expect((result as { reason: string }).reason).toMatch(reason);
  });
});

describe('parseManifest', () => {
  it('keeps every row verbatim with its line number', () => {
    const rows = parseManifest('a.tif,3\nb.tif, 1\nc.png,3\n');
    expect(rows.map((r) => [r.line, r.raw, r.key, r.bands])).toEqual([
      [1, 'a.tif,3', 'a.tif', 3],
      [2, 'b.tif, 1', 'b.tif', 1],
      [3, 'c.png,3', undefined, undefined],
    ]);
    expect(rows[2]!.reason).toMatch(/does not name a GeoTIFF/);
  });

  it('reads a UTF-8 BOM, CRLF line ends and no final newline', () => {
    const rows = parseManifest('\uFEFFa.tif,3\r\nb.tif,4');
    expect(rows.map((r) => [r.line, r.raw, r.key, r.bands])).toEqual([
      [1, 'a.tif,3', 'a.tif', 3],
      [2, 'b.tif,4', 'b.tif', 4],
    ]);
  });

  it('skips blank lines but keeps line numbers true to the file', () => {
    const rows = parseManifest('a.tif,3\n\n\nb.tif,1\n');
    expect(rows.map((r) => r.line)).toEqual([1, 4]);
  });

  it('fails a duplicate row once and keeps the first', () => {
    const rows = parseManifest('a.tif,3\nb.tif,1\na.tif,3\n');
    expect(rows.filter((r) => r.key !== undefined).map((r) => r.key)).toEqual(['a.tif', 'b.tif']);
    expect(rows[2]!.reason).toBe('duplicate of line 1; the image is converted once');
  });

  it("fails a row whose preview would overwrite an earlier row's", () => {
    const rows = parseManifest('d/x.tif,3\nd/x.tiff,3\n');
    expect(rows[1]!.reason).toMatch(/preview d\/x\.jpg would overwrite the preview of line 1/);
  });

  it('accepts quoted keys with commas as CSV allows', () => {
    const rows = parseManifest('"a,b.tif",3\n');
    expect(rows[0]).toMatchObject({ key: 'a,b.tif', bands: 3, raw: '"a,b.tif",3' });
  });

  it('rejects binary content as a whole, and a row with broken quoting alone', () => {
    expect(() => parseManifest('\u0000\u0001PNG')).toThrow(/not a CSV text file/);
    const rows = parseManifest('"a.tif,3\nb.tif,1\n');
    expect(rows[0]).toMatchObject({ line: 1, raw: '"a.tif,3' });
    expect(rows[0]!.reason).toMatch(/not valid CSV/);
    expect(rows[1]).toMatchObject({ line: 2, key: 'b.tif', bands: 1 });
  });

  it('reads every physical line as one row, whatever its line end: LF, CRLF, CR, mixed', () => {
    // Two manifests joined, one edited on Windows, one on an old Mac.
    const rows = parseManifest('a.tif,3\r\nb.tif,1\nc.tif,4\rd.tif,1\r\n\r\ne.tif,3');
    expect(rows.map((r) => [r.line, r.raw, r.key, r.bands])).toEqual([
      [1, 'a.tif,3', 'a.tif', 3],
      [2, 'b.tif,1', 'b.tif', 1],
      [3, 'c.tif,4', 'c.tif', 4],
      [4, 'd.tif,1', 'd.tif', 1],
      [6, 'e.tif,3', 'e.tif', 3],
    ]);
    expect(rows.every((r) => r.reason === undefined)).toBe(true);
  });

  it('takes keys exactly as written and trims only the band count', () => {
    const rows = parseManifest(' lead.tif,3\ntrail.tif ,3\nmid dle.tif, 3 \n');
    expect(rows[0]).toMatchObject({ key: ' lead.tif', bands: 3 });
    expect(rows[1]!.key).toBeUndefined();
    expect(rows[1]!.reason).toMatch(/the key "trail\.tif " ends in blanks after its \.tif/);
    expect(rows[2]).toMatchObject({ key: 'mid dle.tif', bands: 3, raw: 'mid dle.tif, 3 ' });
  });

  it('fails a row that is not valid UTF-8 alone and keeps its bytes', () => {
    const bytes = Buffer.concat([
      Buffer.from('a.tif,3\n'),
      Buffer.from([0x62, 0xff, 0xfe, 0x2e, 0x74, 0x69, 0x66]),
      Buffer.from(',1\nc.tif,1\n'),
    ]);
    const rows = parseManifest(bytes);
    expect(rows.map((r) => r.key)).toEqual(['a.tif', undefined, 'c.tif']);
    expect(Buffer.isBuffer(rows[1]!.raw)).toBe(true);
    expect((rows[1]!.raw as Buffer).equals(Buffer.from([0x62, 0xff, 0xfe, 0x2e, 0x74, 0x69, 0x66, 0x2c, 0x31]))).toBe(
      true,
    );
    expect(rows[1]!.reason).toBe('the row is not valid UTF-8 (byte 0xff at byte 2)');
  });

  it('returns no rows for an empty manifest', () => {
    expect(parseManifest('')).toEqual([]);
    expect(parseManifest('\n\n')).toEqual([]);
  });
});
