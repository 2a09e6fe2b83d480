/**
 * The README's flag tables, made from the option table: `npm run docs` writes them between the
 * README's `<!-- options:begin -->` and `<!-- options:end -->` markers, and a test fails when they
 * differ from what the table says.
 */
import { defaultText, OPTIONS, type OptionName, type OptionSpec, type Scope } from './options.js';

const SECTIONS: Array<{ scope: Scope; title: string }> = [
  {
    scope: 'identity',
    title: 'The watch — what names it (`poll`, `start`; `plan` takes the buckets and endpoint, none required)',
  },
  {
    scope: 'watch',
    title:
      'The watch — its own settings, stored with it (`poll`, `start`; a later start changes only what it gives; `poll --dry-run` and `plan` store nothing)',
  },
  {
    scope: 'home',
    title:
      'The home — the engine on this machine, stored in the home (`poll`, `start`; the daemon reads them at its start; `poll --dry-run` and `plan` store nothing)',
  },
  { scope: 'command', title: 'This command only' },
];

const cell = (text: string): string => text.replace(/\|/g, '\\|');

export const DOC_BEGIN = '<!-- options:begin (made by `npm run docs` from src/config/options.ts; do not edit) -->';
export const DOC_END = '<!-- options:end -->';

export function optionsMarkdown(): string {
  const out: string[] = [];
  for (const { scope, title } of SECTIONS) {
    out.push(`**${title}**`, '', '| flag | meaning | default | commands |', '| --- | --- | --- | --- |');
    for (const name of Object.keys(OPTIONS) as OptionName[]) {
      const spec = OPTIONS[name] as OptionSpec;
      if (spec.scope !== scope || spec.verbs.every((v) => v === 'daemon')) continue;
      const flags = spec.flags
        .split(', ')
        .map((f) => `\`${cell(f)}\``)
        .join(', ');
      const negation = spec.negatable === true ? `, \`--no-${/--([\w-]+)/.exec(spec.flags)?.[1] ?? name}\`` : '';
      const choices = spec.choices === undefined ? '' : ` (${spec.choices.join(', ')})`;
      const verbs = spec.verbs.filter((v) => v !== 'daemon').join(', ');
      const fallback = defaultText(name);
      const shown =
        fallback === undefined
          ? scope === 'identity'
            ? 'required'
            : '—'
          : /^[A-Za-z ]+$/.test(fallback)
            ? fallback
            : `\`${fallback}\``;
      out.push(`| ${flags}${negation} | ${cell(spec.doc)}${choices} | ${cell(shown)} | ${verbs} |`);
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

/** The README with its flag tables replaced by what the option table says now. */
export function withOptionsDoc(readme: string): string {
  const begin = readme.indexOf(DOC_BEGIN);
  const end = readme.indexOf(DOC_END);
  if (begin === -1 || end === -1 || end < begin) throw new Error(`the README has no ${DOC_BEGIN} … ${DOC_END} block`);
  return `${readme.slice(0, begin + DOC_BEGIN.length)}\n\n${optionsMarkdown()}\n\n${readme.slice(end)}`;
}
