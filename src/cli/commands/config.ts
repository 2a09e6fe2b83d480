/**
 * `cogd config [w3]`: every setting in effect — the home's (the engine on this machine) and each
 * watch's — with its value and where it came from: a default, or a flag given (and when).
 */
import { existsSync } from 'node:fs';
import {
  namesOf,
  readOptions,
  resolveHome,
  resolveHomeSettings,
  showValue,
  storedHomeValues,
  flagLabel,
  type OptionName,
} from '../../config/index.js';
import { homePaths } from '../../daemon/home.js';
import { UsageError } from '../../errors.js';
import { watchBatchName } from '../../manifest/names.js';
import { parseTarget } from '../../manifest/targets.js';
import { StateDB } from '../../state/db.js';
import type { Watch, WatchSettings } from '../../types.js';
import { settingsOf } from '../register.js';
import { table } from '../status-view.js';

interface Setting {
  setting: string;
  flag: string;
  value: string;
  /** `default`, or `given <ISO time>` */
  source: string;
}

export interface ConfigReport {
  home: string;
  settings: Setting[];
  watches: Array<{
    id: string;
    batchName: string;
    pattern: string;
    inputBucket: string;
    outputBucket: string;
    endpoint: string | null;
    settings: Setting[];
  }>;
}

const given = (at: string | undefined): string => (at === undefined ? 'default' : `given ${at}`);

function watchSettings(db: StateDB, watch: Watch): Setting[] {
  const values = settingsOf(watch);
  const when = db.watchGiven(watch.id);
  const names = [...namesOf('watch')] as Array<OptionName & keyof WatchSettings>;
  const rows: Setting[] = names.map((name) => ({
    setting: name,
    flag: flagLabel(name),
    value: showValue(name, values[name]),
    source: given(when[name]),
  }));
  rows.push({ setting: 'region', flag: 'AWS_REGION', value: values.region, source: given(when['region']) });
  return rows;
}

/** The watch a filter names (`w3` → 3); undefined for none. */
function watchId(filter: string | undefined): number | undefined {
  if (filter === undefined) return undefined;
  const target = /^w\d+$/i.test(filter) ? parseTarget(filter) : undefined;
  if (target?.kind !== 'watch')
    throw new UsageError(`"${filter}" is not a watch id`, 'watch ids are w1, w2… as `cogd status` shows them');
  return target.watch;
}

export function buildConfig(db: StateDB, home: string, filter?: string): ConfigReport {
  const stored = db.homeSettings();
  const { settings, sources } = resolveHomeSettings(home, storedHomeValues(stored), {});
  const homeRows = (Object.keys(settings) as Array<keyof typeof settings>).map((name) => ({
    setting: name,
    flag: flagLabel(name),
    value: showValue(name, settings[name]),
    source: sources[name] === 'stored' ? given(stored[name]?.updatedAt) : 'default',
  }));
  const id = watchId(filter);
  const watches = db.liveWatches().filter((w) => id === undefined || w.id === id);
  return {
    home,
    settings: homeRows,
    watches: watches.map((w) => ({
      id: `w${w.id}`,
      batchName: watchBatchName(w.pattern),
      pattern: w.pattern,
      inputBucket: w.inputBucket,
      outputBucket: w.outputBucket,
      endpoint: w.s3.endpoint ?? null,
      settings: watchSettings(db, w),
    })),
  };
}

export function renderConfig(report: ConfigReport): string {
  const block = (rows: Setting[]): string[] =>
    table([['SETTING', 'VALUE', 'SOURCE'], ...rows.map((r) => [r.flag, r.value, r.source])], new Set()).map(
      (l) => `  ${l}`,
    );
  const lines = [
    `-- cogd config: ${report.home}`,
    '',
    'home (read by the daemon at its start):',
    ...block(report.settings),
  ];
  for (const w of report.watches) {
    lines.push(
      '',
      `watch ${w.id} ${w.batchName}: s3://${w.inputBucket} → s3://${w.outputBucket}${w.endpoint === null ? '' : ` on ${w.endpoint}`}`,
      ...block(w.settings),
    );
  }
  return lines.join('\n');
}

export function configCommand(filter: string | undefined, flags: Record<string, unknown>): number {
  const options = readOptions('config', flags);
  const home = resolveHome(options.command.home);
  watchId(filter); // a bad filter is a usage error, whether or not anything ran here
  const { db: file } = homePaths(home);
  if (!existsSync(file)) {
    process.stdout.write(`-- cogd: ${home} : nothing has run here yet (start with \`cogd start\`)\n`);
    return 0;
  }
  const db = new StateDB(file);
  try {
    const report = buildConfig(db, home, filter);
    process.stdout.write(`${options.command.json === true ? JSON.stringify(report, null, 2) : renderConfig(report)}\n`);
    if (filter !== undefined && report.watches.length === 0) {
      process.stderr.write(`cogd config: there is no live watch ${filter}\n`);
      return 1;
    }
    return 0;
  } finally {
    db.close();
  }
}
