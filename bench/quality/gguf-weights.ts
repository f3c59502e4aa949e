/**
 * The committed GGUFs back into the files PyTorch reads: every tensor as float32 under its GGUF name
 * with its torch shape (ggml dims reversed), in the manifest format training/world/train_llava.py
 * writes; and the vocabulary and model config. So round 1 starts from exactly the shipped round-0
 * model (F16 as the engine loads it), with no training checkpoint needed.
 */
import { open, writeFile } from 'node:fs/promises';
import { f16ArrayToF32 } from '../../fixtures/gguf/half.js';
import { metaArray, readGgufInfo } from '../../lib/gguf/reader.js';
import { GgmlType } from '../../lib/gguf/constants.js';
import type { Vocab } from '../../fixtures/gguf/vocab.js';

/** Writes `stem.bin` + `stem.json` (name -> { shape, offset }). */
export async function dumpGgufWeights(file: string, stem: string): Promise<void> {
  const info = await readGgufInfo(file);
  const handle = await open(file, 'r');
  const manifest: Record<string, { shape: number[]; offset: number }> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  try {
    for (const t of info.tensors) {
      const raw = Buffer.alloc(t.bytes);
      await handle.read(raw, 0, t.bytes, info.dataOffset + t.offset);
      let values: Float32Array;
      if (t.type === GgmlType.F32) values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      else if (t.type === GgmlType.F16) values = f16ArrayToF32(new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)));
      else throw new Error(`${file}: tensor ${t.name} is ${t.typeName}; only F32 and F16 are read back`);
      const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      manifest[t.name] = { shape: [...t.dims].reverse(), offset };
      chunks.push(bytes);
      offset += bytes.length;
    }
  } finally {
    await handle.close();
  }
  await writeFile(`${stem}.bin`, Buffer.concat(chunks));
  await writeFile(`${stem}.json`, JSON.stringify(manifest));
}

/** The SentencePiece vocabulary stored in a llama GGUF. */
export async function readGgufVocab(file: string): Promise<Vocab & { scores: Float32Array }> {
  const info = await readGgufInfo(file);
  const tokens = metaArray(info, 'tokenizer.ggml.tokens');
  const scores = metaArray(info, 'tokenizer.ggml.scores');
  const types = metaArray(info, 'tokenizer.ggml.token_type');
  if (!tokens || !scores || !types) throw new Error(`${file}: no SentencePiece vocabulary`);
  return {
    tokens: Array.from(tokens as ArrayLike<string>),
    scores: Float32Array.from(scores as ArrayLike<number>),
    tokenTypes: Int32Array.from(types as ArrayLike<number>),
  };
}
