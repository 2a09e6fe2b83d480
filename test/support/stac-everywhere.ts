/**
 * Every STAC item and collection any suite makes cogd write is validated against the official
 * schemas: after each test file, every `.json` object with a `stac_version` in the output buckets
 * it made is checked (core and each listed extension). A failure fails the file. Without
 * COGD_STAC_SCHEMAS the check is skipped, and the file says so once.
 */
import { afterAll } from 'vitest';
import { createdBuckets, getText, keys } from './helpers.js';
import { STAC_SCHEMAS, stacValidator } from './stac.js';

afterAll(async () => {
  if (createdBuckets.length === 0) return;
  if (STAC_SCHEMAS === undefined) {
    console.log('NOTICE: COGD_STAC_SCHEMAS is not set; the STAC documents this file made are not validated');
    return;
  }
  const validator = stacValidator(STAC_SCHEMAS);
  const problems: string[] = [];
  let checked = 0;
  for (const bucket of createdBuckets.splice(0)) {
    for (const key of (await keys(bucket)).filter((k) => k.endsWith('.json'))) {
      let doc: { type?: string; stac_version?: string };
      try {
        doc = JSON.parse(await getText(bucket, key)) as typeof doc;
      } catch {
        continue; // not JSON: not cogd's STAC
      }
      if (doc.stac_version === undefined) continue;
      checked += 1;
      const errors = doc.type === 'Collection' ? validator.validateCollection(doc) : validator.validateItem(doc);
      problems.push(...errors.map((e) => `s3://${bucket}/${key}: ${e}`));
    }
  }
  if (problems.length > 0)
    throw new Error(
      `${problems.length} STAC schema errors in ${checked} documents:\n${problems.slice(0, 20).join('\n')}`,
    );
});
