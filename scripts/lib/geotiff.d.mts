export interface ImageSpec {
  width?: number;
  height?: number;
  bands: number;
  type?: 'Byte' | 'UInt16' | 'Int16' | 'Float32';
  /** Start value of each band's gradient. */
  burn?: number[];
  /** Dataset metadata items (gdal_translate -mo). */
  metadata?: Record<string, string>;
}
export function makeTiff(file: string, spec: ImageSpec): Promise<string>;
