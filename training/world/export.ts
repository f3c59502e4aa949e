/**
 * Writes the trained world LLaVA as a text GGUF + mmproj GGUF in the layout of real LLaVA-1.5 files,
 * through the fixtures' plans (fixtures/gguf/fixtures.ts: same keys, tensor names, shapes and types) with
 * the trained vocabulary and weights, then checks both with lib/gguf/check.ts.
 *
 *     node dist/training/world/export.js llava DATA_DIR TRAIN_DIR OUT_DIR
 *     node dist/training/world/export.js bert BERT_DATA_DIR BERT_TRAIN_DIR OUT_DIR
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkEmbedderFile, checkVisionModelFiles } from '../../lib/gguf/check.js';
import { CLIP_MEAN, CLIP_STD, planBertEmbedder, planLlavaMmproj, planLlavaTextModel, type BertShape, type LlavaShape } from '../../fixtures/gguf/fixtures.js';
import type { Vocab } from '../../fixtures/gguf/vocab.js';
import { writeGguf } from '../../fixtures/gguf/writer.js';
import { WORLD_MODEL_FILES } from '../../lib/world/model-files.js';
import { WORLD_MODEL } from './config.js';


export function worldShape(vocabSize: number): LlavaShape {
  const { text, vision } = WORLD_MODEL;
  return {
    name: 'world',
    text: { ...text, nHeadKv: text.nHead, vocabSize },
    vision: {
      ...vision,
      imageSize: WORLD_MODEL.imageSize,
      patchSize: WORLD_MODEL.patchSize,
      projectionDim: vision.nEmbd,
      imageMean: CLIP_MEAN,
      imageStd: CLIP_STD,
    },
  };
}

interface Manifest {
  [name: string]: { shape: number[]; offset: number };
}

/** A lookup of trained weights by GGUF name that remembers which were taken. */
export type TrainedWeights = ((name: string, dims: readonly number[]) => Float32Array) & { unused(): string[] };

/** Every weight PyTorch wrote went into the GGUF (a leftover means the layout and the model disagree). */
export function assertAllUsed(weights: TrainedWeights): void {
  const unused = weights.unused();
  if (unused.length > 0) throw new Error(`weights the GGUF layout has no place for: ${unused.join(', ')}`);
}

/** The weights PyTorch wrote (float32, torch layout = ggml order reversed), looked up by GGUF name. */
export async function readWeights(stem: string): Promise<TrainedWeights> {
  const manifest = JSON.parse(await readFile(`${stem}.json`, 'utf8')) as Manifest;
  const data = await readFile(`${stem}.bin`);
  const used = new Set<string>();
  const lookup = (name: string, dims: readonly number[]) => {
    const entry = manifest[name];
    if (!entry) throw new Error(`${stem}.json has no tensor ${name}`);
    const torchDims = [...dims].reverse();
    // A vector may be stored as [n] or [1, n]; anything else must match exactly.
    if (entry.shape.filter((d) => d !== 1).join() !== torchDims.filter((d) => d !== 1).join()) {
      throw new Error(`${name}: PyTorch shape [${entry.shape}] is not ggml [${dims}] reversed`);
    }
    used.add(name);
    const count = dims.reduce((a, b) => a * b, 1);
    return new Float32Array(data.buffer.slice(data.byteOffset + entry.offset, data.byteOffset + entry.offset + count * 4));
  };
  return Object.assign(lookup, { unused: () => Object.keys(manifest).filter((name) => !used.has(name)) });
}

export async function readVocab(file: string): Promise<Vocab> {
  const v = JSON.parse(await readFile(file, 'utf8')) as { tokens: string[]; scores: number[]; tokenTypes: number[] };
  return { tokens: v.tokens, scores: Float32Array.from(v.scores), tokenTypes: Int32Array.from(v.tokenTypes) };
}

export async function exportWorldLlava(dataDir: string, trainDir: string, outDir: string): Promise<{ model: string; mmproj: string }> {
  const vocab = await readVocab(path.join(dataDir, 'vocab.json'));
  const shape = worldShape(vocab.tokens.length);
  const train = JSON.parse(await readFile(path.join(trainDir, 'train.json'), 'utf8')) as { steps: number; seed: number };
  const name = `srf-native world llava (trained ${train.steps} steps, seed ${train.seed})`;
  const files = { model: path.join(outDir, WORLD_MODEL_FILES.model), mmproj: path.join(outDir, WORLD_MODEL_FILES.mmproj) };
  await mkdir(outDir, { recursive: true });
  for (const [kind, file] of [['text', files.model], ['mmproj', files.mmproj]] as const) {
    const weights = await readWeights(path.join(trainDir, `weights-${kind}`));
    const plan = kind === 'text' ? planLlavaTextModel(shape, { vocab, weights, name }) : planLlavaMmproj(shape, { weights, name: `${name} mmproj` });
    assertAllUsed(weights);
    await writeGguf(file, plan.metadata, plan.tensors);
  }
  await checkVisionModelFiles(files.model, files.mmproj);
  return files;
}

/** The trained embedder (embedder-data.ts + train_bert.py) as a BERT GGUF in the fixture layout. */
export async function exportWorldEmbedder(dataDir: string, trainDir: string, outDir: string): Promise<string> {
  const v = JSON.parse(await readFile(path.join(dataDir, 'vocab.json'), 'utf8')) as { tokens: string[]; tokenTypes: number[] };
  const vocab: Vocab = { tokens: v.tokens, tokenTypes: Int32Array.from(v.tokenTypes) };
  const shape = JSON.parse(await readFile(path.join(dataDir, 'config.json'), 'utf8')) as BertShape;
  const train = JSON.parse(await readFile(path.join(trainDir, 'train.json'), 'utf8')) as { steps: number; seed: number };
  const weights = await readWeights(path.join(trainDir, 'weights'));
  const plan = planBertEmbedder(shape, { vocab, weights, name: `srf-native world embedder (bert, trained ${train.steps} steps, seed ${train.seed})` });
  assertAllUsed(weights);
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, WORLD_MODEL_FILES.embedder);
  await writeGguf(file, plan.metadata, plan.tensors);
  await checkEmbedderFile(file);
  return file;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [kind, dataDir, trainDir, outDir] = process.argv.slice(2);
  if ((kind !== 'llava' && kind !== 'bert') || !dataDir || !trainDir || !outDir) {
    throw new Error('usage: export.js llava|bert DATA_DIR TRAIN_DIR OUT_DIR');
  }
  console.log(kind === 'llava' ? await exportWorldLlava(dataDir, trainDir, outDir) : await exportWorldEmbedder(dataDir, trainDir, outDir));
}
