/**
 * Reads a manifest and validates each row at the boundary. A bad row never stops the good ones: it
 * comes back with the reason it was rejected.
 *
 * Each physical line is one row, whatever its line end (LF, CRLF, CR, mixed — two files joined, one
 * edited on Windows), as Python's csv module reads the reference tool's manifests. A row keeps its
 * bytes exactly: one that is not valid UTF-8 fails alone and reaches the failed CSV unchanged.
 */
import { parse } from 'csv-parse/sync';
import { CogdError } from '../errors.js';
import { previewKey } from './names.js';

/** One line of a manifest, verbatim, with what validation made of it. */
export interface ManifestRow {
  /** 1-based line number in the manifest. */
  line: number;
  /**
   * The row as written, without its line end: result CSVs hold it unchanged. Bytes where the row is
   * not valid UTF-8.
   */
  raw: string | Buffer;
  /** The image key (column 1), when the row is valid. */
  key?: string;
  /** The declared band count (column 2), when the row is valid. */
  bands?: number;
  /** Why the row was rejected; absent for valid rows. */
  reason?: string;
}

export const MAX_KEY_BYTES = 1024;

/**
 * Checks one record; returns the reason it is rejected, or the key and band count. The key is taken
 * exactly as written (S3 keys may begin or end with blanks); only the band count is trimmed.
 */
export function validateRecord(fields: string[]): { key: string; bands: number } | { reason: string } {
  if (fields.length !== 2) {
    return { reason: `expected 2 columns (image key, band count), found ${fields.length}` };
  }
  const [key = '', bandField = ''] = fields;
  const bandText = bandField.trim();
  if (key.trim() === '')
    return { reason: key === '' ? 'the image key (column 1) is empty' : 'the image key (column 1) is blank' };
  if (/\p{Cc}/u.test(key)) return { reason: `the key ${JSON.stringify(key)} contains a control character` };
  if (key.startsWith('/'))
    return { reason: `the key "${key}" starts with "/"; keys are relative to the input bucket (drop the leading "/")` };
  if (key.split('/').some((segment) => segment === '..' || segment === '.')) {
    return { reason: `the key "${key}" contains a "." or ".." segment` };
  }
  if (key.split('/').some((segment) => segment === ''))
    return { reason: `the key "${key}" contains an empty path segment ("//" or a trailing "/")` };
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return { reason: `the key is longer than ${MAX_KEY_BYTES} bytes` };
  if (!/\.tiff?$/i.test(key)) {
    if (/\.tiff?$/i.test(key.trimEnd())) {
      return {
        reason: `the key "${key}" ends in blanks after its .tif: keys are taken as written, so it does not name a GeoTIFF (remove the blanks unless they are part of the key)`,
      };
    }
    return { reason: `the key "${key}" does not name a GeoTIFF (.tif or .tiff)` };
  }
  if (!/^\d+$/.test(bandText) || Number(bandText) < 1) {
    return { reason: `the band count "${bandText}" (column 2) is not a positive whole number` };
  }
  return { key, bands: Number(bandText) };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The physical lines of a manifest: split at every LF, CRLF or CR, with their 1-based numbers. One
 * at a time: a million-row manifest never has a million line views alive at once.
 */
function* physicalLines(bytes: Buffer): Generator<{ line: number; bytes: Buffer }> {
  let start = 0;
  let number = 1;
  for (let i = 0; i < bytes.length; i += 1) {
    const byte = bytes[i];
    if (byte !== 0x0a && byte !== 0x0d) continue;
    yield { line: number, bytes: bytes.subarray(start, i) };
    if (byte === 0x0d && bytes[i + 1] === 0x0a) i += 1;
    start = i + 1;
    number += 1;
  }
  if (start < bytes.length) yield { line: number, bytes: bytes.subarray(start) };
}

/** Where a row stops being UTF-8 (the first byte of the first bad sequence), for the reason a user reads. */
function invalidUtf8(bytes: Buffer): string {
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i]!;
    const length =
      lead < 0x80
        ? 1
        : lead >= 0xc2 && lead <= 0xdf
          ? 2
          : lead >= 0xe0 && lead <= 0xef
            ? 3
            : lead >= 0xf0 && lead <= 0xf4
              ? 4
              : 0;
    let valid = length > 0 && i + length <= bytes.length;
    if (valid && length > 1) {
      try {
        UTF8.decode(bytes.subarray(i, i + length)); // continuation bytes, overlong forms, surrogates
      } catch {
        valid = false;
      }
    }
    if (!valid) return `byte 0x${lead.toString(16).padStart(2, '0')} at byte ${i + 1}`;
    i += length;
  }
  return 'an invalid sequence';
}

/** The fields of one line of CSV, or why it is not CSV. */
function fieldsOf(text: string): string[] | { reason: string } {
  try {
    const records: string[][] = parse(text, { relax_column_count: true });
    return records[0] ?? [];
  } catch (cause) {
    return { reason: `not valid CSV: ${cause instanceof Error ? cause.message : String(cause)}` };
  }
}

/**
 * Parses manifest bytes (UTF-8; a BOM, any line ends and a missing final newline are fine) into
 * rows, each validated; duplicates and rows whose preview would collide with an earlier row's are
 * rejected. Blank lines hold no row. Throws a CogdError when the content is not text at all.
 */
export function parseManifest(input: Buffer | string): ManifestRow[] {
  let bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  if (bytes.includes(0)) {
    throw new CogdError('NotCsv', 'the manifest is not a CSV text file (it contains NUL bytes)');
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);

  const rows: ManifestRow[] = [];
  const firstLineOfKey = new Map<string, number>();
  const firstLineOfPreview = new Map<string, number>();
  for (const { line, bytes: lineBytes } of physicalLines(bytes)) {
    let text: string;
    try {
      text = UTF8.decode(lineBytes);
    } catch {
      rows.push({
        line,
        raw: Buffer.from(lineBytes),
        reason: `the row is not valid UTF-8 (${invalidUtf8(lineBytes)})`,
      });
      continue;
    }
    if (text.trim() === '') continue; // a line of blanks holds no row
    const fields = fieldsOf(text);
    const checked = Array.isArray(fields) ? validateRecord(fields) : fields;
    if ('reason' in checked) {
      rows.push({ line, raw: text, reason: checked.reason });
      continue;
    }
    const earlier = firstLineOfKey.get(checked.key);
    if (earlier !== undefined) {
      rows.push({ line, raw: text, reason: `duplicate of line ${earlier}; the image is converted once` });
      continue;
    }
    const preview = previewKey(checked.key);
    const clash = firstLineOfPreview.get(preview);
    if (clash !== undefined) {
      rows.push({ line, raw: text, reason: `its preview ${preview} would overwrite the preview of line ${clash}` });
      continue;
    }
    firstLineOfKey.set(checked.key, line);
    firstLineOfPreview.set(preview, line);
    rows.push({ line, raw: text, key: checked.key, bands: checked.bands });
  }
  return rows;
}
