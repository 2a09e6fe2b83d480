/**
 * Test images with the features the conversion rules care about — band roles, alpha, nodata,
 * palettes, 1-bit data, extreme shapes — written with GDAL's own Python bindings (Debian's
 * python3-gdal, which the validator tests use too) so every tag is what GDAL itself writes.
 */
import { execa } from 'execa';
import path from 'node:path';

export type Feature =
  'bgr' | 'rgb' | 'rgba' | 'u16-nodata' | 'i16' | 'f32-nodata' | 'palette' | 'bit1' | 'tall' | 'rgb-nodata';

const SCRIPT = String.raw`
import sys, numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
kind, out = sys.argv[1], sys.argv[2]
w, h = (1, 70000) if kind == 'tall' else (600, 400)
x = np.add.outer(np.arange(h), np.arange(w))
def create(bands, gtype, options=[]):
    ds = gdal.GetDriverByName('GTiff').Create(out, w, h, bands, gtype, options)
    ds.SetGeoTransform([500000, 10, 0, 4500000, 0, -10])
    srs = osr.SpatialReference(); srs.ImportFromEPSG(32618); ds.SetProjection(srs.ExportToWkt())
    return ds
if kind in ('bgr', 'rgb', 'rgb-nodata'):
    ds = create(3, gdal.GDT_Byte, ['PHOTOMETRIC=RGB'] if kind != 'bgr' else [])
    red, green, blue = np.full((h, w), 200, np.uint8), np.full((h, w), 30, np.uint8), np.full((h, w), 40, np.uint8)
    order = [blue, green, red] if kind == 'bgr' else [red, green, blue]
    roles = [gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand] if kind == 'bgr' else [gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand]
    for i in range(3):
        band = ds.GetRasterBand(i + 1); a = order[i].copy()
        if kind == 'rgb-nodata': a[:, :100] = 0; band.SetNoDataValue(0)
        band.WriteArray(a); band.SetColorInterpretation(roles[i])
elif kind == 'rgba':
    ds = create(4, gdal.GDT_Byte, ['PHOTOMETRIC=RGB', 'ALPHA=YES'])
    for i, v in enumerate([20, 120, 220]): ds.GetRasterBand(i + 1).WriteArray(((x + v) % 256).astype(np.uint8))
    a = np.full((h, w), 255, np.uint8); a[:, :300] = 0; ds.GetRasterBand(4).WriteArray(a)
elif kind == 'u16-nodata':
    ds = create(1, gdal.GDT_UInt16); a = (1000 + x * 2).astype(np.uint16); a[:, :300] = 0
    ds.GetRasterBand(1).WriteArray(a); ds.GetRasterBand(1).SetNoDataValue(0)
elif kind == 'i16':
    ds = create(1, gdal.GDT_Int16); ds.GetRasterBand(1).WriteArray((x - 500).astype(np.int16))
elif kind == 'f32-nodata':
    ds = create(1, gdal.GDT_Float32); a = (100.0 + x * 0.25).astype(np.float32); a[:, :300] = -9999
    ds.GetRasterBand(1).WriteArray(a); ds.GetRasterBand(1).SetNoDataValue(-9999)
elif kind == 'palette':
    ds = create(1, gdal.GDT_Byte); ds.GetRasterBand(1).WriteArray(((x // 50) % 4).astype(np.uint8))
    ct = gdal.ColorTable()
    for i, c in enumerate([(0, 0, 255, 255), (0, 255, 0, 255), (255, 0, 0, 255), (255, 255, 0, 255)]): ct.SetColorEntry(i, c)
    ds.GetRasterBand(1).SetColorTable(ct)
elif kind == 'bit1':
    ds = create(1, gdal.GDT_Byte, ['NBITS=1']); ds.GetRasterBand(1).WriteArray(((x // 40) % 2).astype(np.uint8))
elif kind == 'tall':
    ds = create(1, gdal.GDT_Byte); ds.GetRasterBand(1).WriteArray((x % 256).astype(np.uint8))
ds = None
`;

/** Writes a test image with `feature` (600 × 400, or 1 × 70,000 for `tall`), georeferenced in UTM 18N. */
export async function featureTiff(dir: string, feature: Feature): Promise<string> {
  const file = path.join(dir, `${feature}.tif`);
  await execa('/usr/bin/python3', ['-c', SCRIPT, feature, file]);
  return file;
}

/** Pixel values at (x, y) of every band of an image GDAL reads (a JPEG preview, say). */
export async function pixel(file: string, x: number, y: number): Promise<number[]> {
  const { stdout } = await execa('gdallocationinfo', ['-valonly', file, String(x), String(y)]);
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number);
}
