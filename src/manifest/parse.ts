/**
 * Reads a manifest and validates each row at the boundary. A bad row never stops the good ones: it
 * comes back with the reason it was rejected.
 */
import { parse } from 'csv-parse/sync';
import { CogdError } from '../errors.js';
import { previewKey } from './names.js';

/** One line of a manifest, verbatim, with what validation made of it. */
export interface ManifestRow {
  /** 1-based line number in the manifest. */
  line: number;
  /** The row as written, without its line end: result CSVs hold it unchanged. */
  raw: string;
  /** The image key (column 1), when the row is valid. */
  key?: string;
  /** The declared band count (column 2), when the row is valid. */
  bands?: number;
  /** Why the row was rejected; absent for valid rows. */
  reason?: string;
}

export const MAX_KEY_BYTES = 1024;

/** Checks one record; returns the reason it is rejected, or the key and band count. */
export function validateRecord(fields: string[]): { key: string; bands: number } | { reason: string } {
  if (fields.length !== 2) {
    return { reason: `expected 2 columns (image key, band count), found ${fields.length}` };
  }
  const [key = '', bandText = ''] = fields;
  if (key === '') return { reason: 'the image key (column 1) is empty' };
  if (/[\u0000-\u001f\u007f]/.test(key)) return { reason: `the key ${JSON.stringify(key)} contains a control character` };
  if (key.startsWith('/')) return { reason: `the key "${key}" starts with "/"; keys are relative to the input bucket (drop the leading "/")` };
  if (key.split('/').some((segment) => segment === '..' || segment === '.')) {
    return { reason: `the key "${key}" contains a "." or ".." segment` };
  }
  if (key.split('/').some((segment) => segment === '')) return { reason: `the key "${key}" contains an empty path segment ("//" or a trailing "/")` };
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return { reason: `the key is longer than ${MAX_KEY_BYTES} bytes` };
  if (!/\.tiff?$/i.test(key)) return { reason: `the key "${key}" does not name a GeoTIFF (.tif or .tiff)` };
  if (!/^\d+$/.test(bandText) || Number(bandText) < 1) {
    return { reason: `the band count "${bandText}" (column 2) is not a positive whole number` };
  }
  return { key, bands: Number(bandText) };
}

/**
 * Parses manifest text (UTF-8 BOM, CRLF and a missing final newline are fine) into rows, each
 * validated; duplicates and rows whose preview would collide with an earlier row's are rejected.
 * Throws a CogdError when the text is not CSV at all.
 */
export function parseManifest(text: string): ManifestRow[] {
  if (text.includes('\u0000')) {
    throw new CogdError('NotCsv', 'the manifest is not a CSV text file (it contains NUL bytes)');
  }
  let records: Array<{ record: string[]; raw: string; info: { lines: number } }>;
  try {
    records = parse(text, {
      bom: true,
      raw: true,
      info: true,
      trim: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as Array<{ record: string[]; raw: string; info: { lines: number } }>;
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new CogdError('NotCsv', `the manifest is not valid CSV: ${detail}`, { cause });
  }

  const rows: ManifestRow[] = [];
  const firstLineOfKey = new Map<string, number>();
  const firstLineOfPreview = new Map<string, number>();
  for (const { record, raw, info } of records) {
    // raw carries the blank lines skipped before the record and the record's own line end.
    const verbatim = raw.replace(/^(?:[ \t]*\r?\n)+/, '').replace(/(?:\r\n|\n|\r)$/, '');
    // csv-parse reports the line the record ends on; a record spans as many lines as its raw text.
    const line = info.lines - (verbatim.match(/\n/g)?.length ?? 0);
    if (verbatim.trim() === '') continue; // a line of blanks holds no row
    const checked = validateRecord(record);
    if ('reason' in checked) {
      rows.push({ line, raw: verbatim, reason: checked.reason });
      continue;
    }
    const earlier = firstLineOfKey.get(checked.key);
    if (earlier !== undefined) {
      rows.push({ line, raw: verbatim, reason: `duplicate of line ${earlier}; the image is converted once` });
      continue;
    }
    const preview = previewKey(checked.key);
    const clash = firstLineOfPreview.get(preview);
    if (clash !== undefined) {
      rows.push({ line, raw: verbatim, reason: `its preview ${preview} would overwrite the preview of line ${clash}` });
      continue;
    }
    firstLineOfKey.set(checked.key, line);
    firstLineOfPreview.set(preview, line);
    rows.push({ line, raw: verbatim, key: checked.key, bands: checked.bands });
  }
  return rows;
}
