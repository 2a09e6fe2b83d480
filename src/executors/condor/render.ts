/**
 * Rendering for the HTCondor executor: the submit description (from `submit-templates/cog.sub` or
 * the user's copy), its item data, and the execute-node worker — generated from the same conversion
 * rules the local executor runs, never written twice by hand.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { GRAY_MAX_BANDS, JPEG_QUALITY, PREVIEWABLE, STRETCH_SIGMAS } from '../../convert/rules.js';
import { CogdError } from '../../errors.js';

export const TEMPLATES_DIR = fileURLToPath(new URL('../../../submit-templates/', import.meta.url));

/** A word for bash, quoted only when it needs to be. */
function shellWord(word: string): string {
  return /^[\w./:=+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The worker script, with the conversion rules filled in. */
export async function renderWorker(template?: string): Promise<string> {
  const text = template ?? (await readFile(`${TEMPLATES_DIR}cog-worker.sh.in`, 'utf8'));
  // Interim, until the worker plans profiles per image: the default profile's fixed options.
  const cogOptions = ['-q', '-of', 'COG', '-co', 'COMPRESS=LZW', '-co', 'BIGTIFF=IF_SAFER'];
  const values: Record<string, string> = {
    JPEG_QUALITY: String(JPEG_QUALITY),
    GRAY_MAX_BANDS: String(GRAY_MAX_BANDS),
    STRETCH_SIGMAS: String(STRETCH_SIGMAS),
    PREVIEWABLE: [...PREVIEWABLE].join(' '),
    COG_ARGS: cogOptions.map(shellWord).join(' '),
  };
  const rendered = text.replace(/@@([A-Z_]+)@@/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new CogdError('Template', `the worker template names an unknown rule @@${name}@@`);
    return value;
  });
  return rendered;
}

/**
 * Fills `{{name}}` fields of a submit description. Every field must be given, and no value may
 * carry a newline or a double quote: a value can never add a command to the description.
 */
export function renderSubmit(template: string, fields: Record<string, string>): string {
  for (const [name, value] of Object.entries(fields)) {
    if (/[\n\r"]/.test(value)) throw new CogdError('Template', `the submit field ${name} may not contain a newline or a double quote: ${JSON.stringify(value)}`);
  }
  return template.replace(/\{\{([a-z_]+)\}\}/g, (_, name: string) => {
    const value = fields[name];
    if (value === undefined) throw new CogdError('Template', `the submit template names an unknown field {{${name}}}`, { hint: 'see submit-templates/cog.sub for the fields cogd fills' });
    return value;
  });
}

/**
 * Why a key cannot travel through HTCondor's `queue ... from` item data, or undefined when it can.
 * Item data splits on commas and white space and expands `$(...)`; a key with any of those (or a
 * quote, `=`, `;`) could change the submit description, so such rows are rejected.
 */
export function condorUnsafeKey(key: string): string | undefined {
  const bad = /[^A-Za-z0-9._/+-]/.exec(key);
  if (bad === null) return undefined;
  return `the key contains ${JSON.stringify(bad[0])}, which HTCondor item data cannot carry safely (use letters, digits and . _ / + - only, or --executor local)`;
}

/** One line of item data: input key, COG key, preview key, log name. */
export function itemLine(item: { inputKey: string; cogKey: string; previewKey: string; logName: string }): string {
  for (const key of [item.inputKey, item.cogKey, item.previewKey, item.logName]) {
    const reason = condorUnsafeKey(key);
    if (reason !== undefined) throw new CogdError('UnsafeKey', reason);
  }
  return `${item.inputKey}, ${item.cogKey}, ${item.previewKey}, ${item.logName}`;
}
