/**
 * A fine-tuned round as files the engine loads: the LoRA adapter GGUF (fixtures/gguf/fixtures.ts's
 * planLlavaLora layout, convert_lora_to_gguf.py's names) for `--lora`, and the mmproj with the trained
 * projector (the vision tower unchanged), both checked by lib/gguf/check.ts against the base model.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { checkLoraFile, checkVisionModelFiles } from '../../lib/gguf/check.js';
import { planLlavaLora, planLlavaMmproj, LORA_TARGETS } from '../../fixtures/gguf/fixtures.js';
import { writeGguf } from '../../fixtures/gguf/writer.js';
import { assertAllUsed, readWeights, worldShape } from '../../training/world/export.js';
import { readGgufVocab } from './gguf-weights.js';

export interface RoundFiles {
  lora: string;
  mmproj: string;
}

export async function exportRound(trainDir: string, baseModel: string, outDir: string, label: string): Promise<RoundFiles> {
  const train = JSON.parse(await readFile(path.join(trainDir, 'train.json'), 'utf8')) as { rank: number; alpha: number; steps: number; seed: number };
  const shape = worldShape((await readGgufVocab(baseModel)).tokens.length);
  await mkdir(outDir, { recursive: true });
  const files = { lora: path.join(outDir, `${label}-lora.gguf`), mmproj: path.join(outDir, `${label}-mmproj-f16.gguf`) };
  const name = `srf-native world llava ${label} (LoRA r ${train.rank}, ${train.steps} steps, seed ${train.seed})`;
  const loraWeights = await readWeights(path.join(trainDir, 'weights-lora'));
  const lora = planLlavaLora(shape, { rank: train.rank, alpha: train.alpha, targets: LORA_TARGETS, weights: loraWeights, name });
  await writeGguf(files.lora, lora.metadata, lora.tensors);
  const mmWeights = await readWeights(path.join(trainDir, 'weights-mmproj'));
  const mmproj = planLlavaMmproj(shape, { weights: mmWeights, name: `${name} mmproj` });
  await writeGguf(files.mmproj, mmproj.metadata, mmproj.tensors);
  for (const weights of [loraWeights, mmWeights]) assertAllUsed(weights);
  await checkLoraFile(files.lora, await checkVisionModelFiles(baseModel, files.mmproj));
  return files;
}
