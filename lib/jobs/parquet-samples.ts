/**
 * Parquet files with the image bytes in a column, read as the same samples as a tar shard's
 * (tar-samples.ts): img2dataset's parquet output (`jpg` binary column, `key`, `caption`, `url`, ...)
 * and Hugging Face datasets (`image` as `struct<bytes, path>`). One row group in memory at a time
 * (hyparquet, with hyparquet-compressors for snappy, zstd, gzip, brotli and lz4); a row's key is its
 * `key` column where there is one, else its row number.
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { SrfError } from '../errors.js';
import type { TarSample } from './tar-samples.js';

/** The image column when none is named: img2dataset's `jpg`, then Hugging Face's `image` (its `bytes`). */
export const DEFAULT_IMAGE_COLUMNS = ['jpg', 'image'] as const;

const text = new TextDecoder();

/** `image.bytes` or `jpg`: the image's bytes in a row, or undefined. */
function imageBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'object' && value !== null && (value as { bytes?: unknown }).bytes instanceof Uint8Array) return (value as { bytes: Uint8Array }).bytes;
  return undefined;
}

/** The row's other columns, as JSON would carry them (bytes that are text as text; other bytes left out). */
function rowMetadata(row: Record<string, unknown>, imageColumn: string): Record<string, unknown> {
  const metadata: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) {
    if (name === imageColumn) continue;
    if (value instanceof Uint8Array) {
      const decoded = text.decode(value);
      if (!decoded.includes('\uFFFD')) metadata[name] = decoded;
    } else if (typeof value === 'bigint') metadata[name] = Number(value);
    else if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) metadata[name] = value;
  }
  return metadata;
}

/**
 * The samples of one parquet file. A file that cannot be read, or that has no such image column,
 * is one DATA_INVALID error naming the file and the columns it has.
 */
export async function* readParquetSamples(file: string, imageColumn?: string): AsyncGenerator<TarSample> {
  let buffer;
  let metadata;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (cause) {
    throw new SrfError('DATA_INVALID', `not a readable parquet file (${(cause as Error).message})`, { file, cause });
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const column = imageColumn ?? DEFAULT_IMAGE_COLUMNS.find((name) => columns.includes(name));
  if (column === undefined || !columns.includes(column)) {
    const asked = imageColumn ? `no column ${JSON.stringify(imageColumn)}` : `none of the image columns ${DEFAULT_IMAGE_COLUMNS.join(', ')}`;
    throw new SrfError('DATA_INVALID', `${asked} (its columns: ${columns.join(', ')}); name the image column with --image-column`, { file });
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors, utf8: false });
    } catch (cause) {
      throw new SrfError('DATA_INVALID', `rows ${rowStart}..${rowEnd - 1} cannot be read (${(cause as Error).message})`, { file, cause });
    }
    for (const [i, row] of rows.entries()) {
      const meta = rowMetadata(row, column);
      const key = typeof meta.key === 'string' && meta.key !== '' ? meta.key : String(rowStart + i).padStart(9, '0');
      const bytes = imageBytes(row[column]);
      const sample: TarSample = { key, extension: bytes ? sniffExtension(bytes) : '', bytes: bytes ?? new Uint8Array(0), metadata: meta };
      if (!bytes || bytes.byteLength === 0) sample.problem = new SrfError('IMAGE_EMPTY', `row ${rowStart + i} (key ${key}) has no image bytes in column ${column}`, { file });
      yield sample;
    }
    rowStart = rowEnd;
  }
}

/** Rows in a parquet file, from its footer (for the ETA). */
export async function countParquetRows(file: string): Promise<number> {
  return Number((await parquetMetadataAsync(await asyncBufferFromFile(file))).num_rows);
}

/** The file extension for an image's bytes, from its signature (what the exported file is named). */
function sniffExtension(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'png';
  if (bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[8] === 0x57) return 'webp';
  if (bytes[0] === 0x47 && bytes[1] === 0x49) return 'gif';
  return 'img';
}
