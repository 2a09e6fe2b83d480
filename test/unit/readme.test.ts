/** The README's flag tables are made from the option table; stale tables fail here (run `npm run docs`). */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { optionsMarkdown, withOptionsDoc } from '../../src/config/doc.js';
import { OPTIONS } from '../../src/config/options.js';
import { ROOT } from '../support/helpers.js';

describe('README flag tables', () => {
  it('say what the option table says (run `npm run docs` after changing an option)', async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    expect(withOptionsDoc(readme)).toBe(readme);
  });

  it('list every option a person can give, with its default', () => {
    const doc = optionsMarkdown();
    for (const spec of Object.values(OPTIONS))
      expect(doc).toContain(`\`${spec.flags.split(', ').at(-1)!.replace(/\|/g, '\\|')}\``);
    expect(doc).toContain(
      '| `-m`, `--max-running <n>` | jobs of this watch in flight at most | `10000` | poll, start |',
    );
    expect(doc).toContain('`--s3-endpoint <host\\|url>`');
    expect(doc).toMatch(/`--retry-timeouts`, `--no-retry-timeouts`/);
  });
});
