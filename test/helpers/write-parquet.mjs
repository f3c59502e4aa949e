// Writes a parquet file for the tests with hyparquet-writer, in a plain Node process (the tests' TS
// loader cannot resolve hyparquet-writer's imports of hyparquet/src/*.js). Usage:
//   node write-parquet.mjs SPEC.json   where SPEC = { filename, codec?, rowGroupSize?, columns: [{ name, type, data }] }
// and a BYTE_ARRAY column's data are base64 strings. A ZSTD codec stores its pages in raw zstd blocks.
import { readFileSync } from 'node:fs';
import { parquetWriteFile } from 'hyparquet-writer';

/** A zstd frame that stores `data` in raw blocks: valid zstd that every decoder reads. */
function zstdStored(data) {
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(data.length));
  const parts = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), size]; // magic; single segment, 8-byte content size
  const blockMax = 128 * 1024 - 1;
  let at = 0;
  do {
    const chunk = data.subarray(at, Math.min(data.length, at + blockMax));
    const last = at + blockMax >= data.length ? 1 : 0;
    const header = (chunk.length << 3) | last; // block type 0: raw
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), Buffer.from(chunk));
    at += blockMax;
  } while (at < data.length);
  return new Uint8Array(Buffer.concat(parts));
}

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
parquetWriteFile({
  filename: spec.filename,
  columnData: spec.columns.map((c) => ({ ...c, data: c.type === 'BYTE_ARRAY' ? c.data.map((b) => new Uint8Array(Buffer.from(b, 'base64'))) : c.data })),
  ...(spec.codec ? { codec: spec.codec } : {}),
  ...(spec.codec === 'ZSTD' ? { compressors: { ZSTD: zstdStored } } : {}),
  ...(spec.rowGroupSize ? { rowGroupSize: spec.rowGroupSize } : {}),
});
