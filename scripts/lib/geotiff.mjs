// Makes real GeoTIFFs with GDAL for the tests, the demo and the benchmark: a diagonal gradient per
// band (statistics are not flat, so a preview can be checked for contrast), georeferenced, striped
// — not a COG. Pixels are written as an ENVI raw file, then translated by gdal_translate.
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** ENVI data type code and bytes per sample. */
const ENVI_TYPES = { Byte: [1, 1], Int16: [2, 2], UInt16: [12, 2], Float32: [4, 4] };

/**
 * @param {string} file
 * @param {{ width?: number, height?: number, bands: number, type?: 'Byte'|'UInt16'|'Int16'|'Float32', burn?: number[], metadata?: Record<string, string> }} spec
 * @returns {Promise<string>} the file
 */
export async function makeTiff(file, spec) {
  const width = spec.width ?? 64;
  const height = spec.height ?? 64;
  const type = spec.type ?? 'Byte';
  const [enviType, size] = ENVI_TYPES[type];
  const max = type === 'Byte' ? 255 : type === 'Float32' ? 1000 : 4000;
  const raw = Buffer.alloc(width * height * spec.bands * size);
  let offset = 0;
  for (let b = 0; b < spec.bands; b += 1) {
    const start = spec.burn?.[b] ?? (b * 37) % max;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const value = (start + ((x + y) * max) / (width + height)) % max;
        if (type === 'Byte') raw.writeUInt8(Math.floor(value), offset);
        else if (type === 'UInt16') raw.writeUInt16LE(Math.floor(value), offset);
        else if (type === 'Int16') raw.writeInt16LE(Math.floor(value) - 2000, offset);
        else raw.writeFloatLE(value / 7, offset);
        offset += size;
      }
    }
  }
  const bin = `${file}.bin`;
  await writeFile(bin, raw);
  await writeFile(
    `${file}.hdr`,
    `ENVI\nsamples = ${width}\nlines = ${height}\nbands = ${spec.bands}\nheader offset = 0\nfile type = ENVI Standard\ndata type = ${enviType}\ninterleave = bsq\nbyte order = 0\n`,
  );
  await run('gdal_translate', [
    '-q',
    '-of',
    'GTiff',
    '-a_srs',
    'EPSG:32618',
    '-a_ullr',
    '500000',
    '4500000',
    String(500000 + width * 10),
    String(4500000 - height * 10),
    ...Object.entries(spec.metadata ?? {}).flatMap(([key, value]) => ['-mo', `${key}=${value}`]),
    bin,
    file,
  ]);
  await Promise.all([
    rm(bin, { force: true }),
    rm(`${file}.hdr`, { force: true }),
    rm(`${file}.aux.xml`, { force: true }),
  ]);
  return file;
}
