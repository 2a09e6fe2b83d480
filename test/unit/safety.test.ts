/** The pure parts of the data-safety rules: what is text, log names that fit, key file modes, state files. */
import Database from 'better-sqlite3';
import { chmodSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyFileWarning } from '../../src/daemon/home.js';
import { logNames, logStem, MAX_LOG_STEM } from '../../src/manifest/names.js';
import { StateDB } from '../../src/state/db.js';
import { notText } from '../../src/watch/claim.js';
import { makeTiff, tempDir } from '../support/helpers.js';

describe('notText', () => {
  it('takes CSV text, UTF-8 or not, and refuses a TIFF', async () => {
    expect(notText(Buffer.from('a.tif,3\r\nb.tif,1\n'))).toBeUndefined();
    expect(notText(Buffer.from([0x62, 0xe9, 0x2e, 0x74, 0x69, 0x66, 0x2c, 0x31, 0x0a]))).toBeUndefined(); // Latin-1
    expect(notText(Buffer.alloc(0))).toBeUndefined();
    const tiff = await readFile(await makeTiff(path.join(await tempDir(), 'x.tif'), { bands: 1 }));
    expect(notText(tiff)).toMatch(/^binary content: a NUL byte at offset \d+$/);
    expect(notText(Buffer.from('\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000e\u000f'))).toMatch(
      /10 control bytes/,
    );
  });
});

describe('log names', () => {
  it('keep short base names and cut long ones with a hash of the key, under the file name limit', () => {
    expect(logStem('a/b/scene 1.tif')).toBe('scene_1');
    const long = `x/${'n'.repeat(300)}.tif`;
    const stem = logStem(long);
    expect(stem.length).toBe(MAX_LOG_STEM);
    expect(stem).toMatch(/^n+-[0-9a-f]{10}$/);
    expect(logStem(`y/${'n'.repeat(300)}.tif`)).not.toBe(stem); // another key, another hash
    const names = logNames([
      { key: long, line: 1 },
      { key: `z/${'n'.repeat(300)}.tif`, line: 2 },
      { key: long.replace('x/', 'w/'), line: 3 },
    ]);
    for (const name of names.values()) expect(Buffer.byteLength(`${name}.log`)).toBeLessThan(255);
    expect(new Set(names.values()).size).toBe(3);
  });
});

describe('key files', () => {
  it('are a risk when group or others can read them, as ssh says', async () => {
    const file = path.join(await tempDir(), 'secret.key');
    await writeFile(file, 'k');
    chmodSync(file, 0o600);
    expect(keyFileWarning(file)).toBeUndefined();
    chmodSync(file, 0o640);
    expect(keyFileWarning(file)).toBe(`the key file ${file} is readable by others (mode 0640); run: chmod 600 ${file}`);
    expect(keyFileWarning(path.join(path.dirname(file), 'missing'))).toBeUndefined();
  });
});

describe('state files', () => {
  it('a new or empty file in a home without runs is a fresh state; an empty one beside runs is refused', async () => {
    const home = await tempDir();
    const file = path.join(home, 'cogd.db');
    await writeFile(file, '');
    new StateDB(file).close(); // an empty file in a new home: SQLite's own empty database
    const other = await tempDir();
    await mkdir(path.join(other, 'logs', 'run-20261130-000000'), { recursive: true });
    await writeFile(path.join(other, 'cogd.db'), '');
    expect(() => new StateDB(path.join(other, 'cogd.db'))).toThrow(
      /is empty, but \S+ holds 1 run\(s\): their state is lost/,
    );
  });

  it('a file that is not SQLite, or cut short, is refused before SQLite opens it', async () => {
    const home = await tempDir();
    const file = path.join(home, 'cogd.db');
    new StateDB(file).close();
    // Filler pages written straight into the state file (the state layer has no door for this).
    const db = new Database(file);
    db.exec(
      'CREATE TABLE filler (x TEXT); INSERT INTO filler SELECT hex(randomblob(500)) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n);',
    );
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const whole = await readFile(file);
    await writeFile(file, whole.subarray(0, 8192));
    expect(() => new StateDB(file)).toThrow(/is cut short: 8192 bytes where its header says \d+/);
    await writeFile(file, 'name,value\n');
    expect(() => new StateDB(file)).toThrow(/is not an SQLite database/);
  });
});
