/**
 * Fine-tuning data for PyTorch from a LLaVA JSON of IQ->A records (what `srf-native tasks --ratios
 * 0,0,1` writes): each record tokenized exactly as the engine tokenizes it (training/world's
 * promptTexts/tokenizeRecord over the vocabulary stored in the round-0 GGUF), each image read back
 * from its file as the 64 x 64 RGB the engine sees (the world's images are already square and 64 px).
 */
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { SpmTokenizer } from '../../fixtures/gguf/spm-tokenizer.js';
import type { MultiTaskRecord } from '../../lib/srf/tasks.js';
import { WORLD_MODEL } from '../../training/world/config.js';
import { promptTexts, tokenizeRecord } from '../../training/world/make-data.js';
import { readGgufVocab } from './gguf-weights.js';

export interface TrainingDataSummary {
  records: number;
  images: number;
  byTask: Record<string, number>;
}

/**
 * Writes `outDir/{train.jsonl, images.u8, config.json, vocab.json}` (train_llava.py's data folder
 * format). `imageRoot`: the folder the records' image paths are relative to.
 */
export async function writeTrainingData(tasksFile: string, imageRoot: string, textModel: string, outDir: string): Promise<TrainingDataSummary> {
  const records = JSON.parse(await readFile(tasksFile, 'utf8')) as MultiTaskRecord[];
  const vocab = await readGgufVocab(textModel);
  const tokenizer = new SpmTokenizer(vocab);
  await mkdir(outDir, { recursive: true });
  const imageIndex = new Map<string, number>();
  const pixels = await open(path.join(outDir, 'images.u8'), 'w');
  const lines: string[] = [];
  const byTask: Record<string, number> = {};
  try {
    for (const record of records) {
      let image = -1;
      if (record.image !== undefined) {
        const file = path.resolve(imageRoot, record.image);
        if (!imageIndex.has(file)) {
          const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
          if (info.width !== WORLD_MODEL.imageSize || info.height !== WORLD_MODEL.imageSize) throw new Error(`${file}: ${info.width}x${info.height}, expected world images of ${WORLD_MODEL.imageSize} px`);
          await pixels.write(data);
          imageIndex.set(file, imageIndex.size);
        }
        image = imageIndex.get(file)!;
      }
      const tokens = tokenizeRecord(tokenizer, promptTexts(record));
      const task = record.srf?.task ?? 'iqToA';
      byTask[task] = (byTask[task] ?? 0) + 1;
      lines.push(JSON.stringify({ image, ...tokens, task }));
    }
  } finally {
    await pixels.close();
  }
  await writeFile(path.join(outDir, 'train.jsonl'), lines.join('\n') + '\n');
  await writeFile(path.join(outDir, 'config.json'), JSON.stringify(WORLD_MODEL, null, 1) + '\n');
  await writeFile(path.join(outDir, 'vocab.json'), JSON.stringify({ tokens: vocab.tokens }));
  return { records: lines.length, images: imageIndex.size, byTask };
}
