/**
 * The fixed cases of the parity test: held-out world images and prompts of the three SRF tasks,
 * tokenized as the engine does, with the pixels the engine gets (lib/engine/image.ts prepareImage).
 * reference.py answers them with PyTorch; test/world-model.test.ts asks the engine the same.
 *
 *     node dist/training/world/parity-cases.js DATA_DIR CASES_DIR
 */
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpmTokenizer, type SpmVocabulary } from '../../fixtures/gguf/spm-tokenizer.js';
import { prepareImage } from '../../lib/engine/image.js';
import { DEFAULT_TEMPLATES } from '../../lib/srf/prompts.js';
import { llavaPromptParts } from '../../lib/engine/llava-prompt.js';
import { FAMILIES, FAMILY_NAMES } from '../../lib/world/families.js';
import { renderScenePng } from '../../lib/world/render.js';
import { generateScene } from '../../lib/world/scene.js';
import { createRandom } from '../../lib/srf/random.js';
import { WORLD_MODEL } from './config.js';
import { readVocab } from './export.js';

export interface ParityCase {
  /** PNG file name in the cases folder. */
  file: string;
  /** Index into images.u8. */
  image: number;
  task: 'iToQa' | 'iaToQ' | 'iqToA';
  /** The user text after the image. */
  prompt: string;
  pre: number[];
  post: number[];
  maxTokens: number;
}

export async function writeParityCases(dataDir: string, casesDir: string, images = 8): Promise<ParityCase[]> {
  const tokenizer = new SpmTokenizer((await readVocab(path.join(dataDir, 'vocab.json'))) as SpmVocabulary);
  await mkdir(casesDir, { recursive: true });
  const random = createRandom(7);
  const imageFamilies = FAMILY_NAMES.filter((name) => FAMILIES[name].needsImage);
  const cases: ParityCase[] = [];
  const raw = await open(path.join(casesDir, 'images.u8'), 'w');
  for (let i = 0; i < images; i++) {
    const scene = generateScene(WORLD_MODEL.heldOutFirstSeed + i);
    const file = `parity-${i}.png`;
    const png = await renderScenePng(scene, { size: WORLD_MODEL.imageSize });
    await writeFile(path.join(casesDir, file), png);
    await raw.write((await prepareImage(png, WORLD_MODEL.imageSize)).rgb);
    let qa = null;
    for (let k = 0; !qa; k++) qa = FAMILIES[imageFamilies[(i + k) % imageFamilies.length]!].ask(scene, random);
    const prompts = [
      { task: 'iToQa' as const, prompt: DEFAULT_TEMPLATES.iToQaInstruction, maxTokens: 64 },
      { task: 'iaToQ' as const, prompt: DEFAULT_TEMPLATES.iaToQInstruction(qa.answer), maxTokens: 48 },
      { task: 'iqToA' as const, prompt: DEFAULT_TEMPLATES.iqToAInstruction(qa.question), maxTokens: 48 },
    ];
    for (const p of prompts) {
      const parts = llavaPromptParts(p.prompt);
      cases.push({ file, image: i, ...p, pre: tokenizer.tokenize(parts.beforeImage, { addBos: true }), post: tokenizer.tokenize(parts.afterImage) });
    }
  }
  await raw.close();
  await writeFile(path.join(casesDir, 'cases.json'), JSON.stringify({ cases }, null, 1) + '\n');
  return cases;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [dataDir, casesDir] = process.argv.slice(2);
  if (!dataDir || !casesDir) throw new Error('usage: parity-cases.js DATA_DIR CASES_DIR');
  const cases = await writeParityCases(dataDir, casesDir);
  console.log(`${cases.length} cases in ${casesDir}`);
}
