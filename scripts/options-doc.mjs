// Writes the README's flag tables from the option table (src/config/options.ts, built into dist/).
// `npm run docs`; test/unit/readme.test.ts fails when the README is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withOptionsDoc } from '../dist/config/doc.js';

const readme = path.resolve(import.meta.dirname, '..', 'README.md');
const before = readFileSync(readme, 'utf8');
const after = withOptionsDoc(before);
if (after !== before) writeFileSync(readme, after);
console.log(after === before ? 'README.md: flag tables up to date' : 'README.md: flag tables rewritten');
