/**
 * The material of `srf-native run --demo`: the world model (models/world: a tiny LLaVA-1.5 and BERT
 * embedder trained on the synthetic world of lib/world, committed with the package), held-out world
 * images it never saw in training (one in a subfolder, and one deliberately broken file that shows
 * up as an error line), and a three-record "original" LLaVA data file for --merge-with. No downloads,
 * nothing trained: the report shows the model's real questions, answers and re-predictions.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SrfError } from '../errors.js';
import { QA_REPLY_GRAMMAR, type TaskName } from '../srf/prompts.js';
import type { SamplingOptions } from '../engine/types.js';
import { buildWorldData } from '../world/dataset.js';
import { renderScenePng } from '../world/render.js';
import { generateScene } from '../world/scene.js';
import { WORLD_HELD_OUT_SEED, WORLD_MODEL_FILES, worldModelDir } from '../world/model-files.js';

export interface DemoAssets {
  model: string;
  mmproj: string;
  embedder: string;
  /** Folder of the demo images (the run's --images and image root). */
  images: string;
  /** LLaVA JSON standing in for the original instruction data. */
  original: string;
}

/** World images of the demo: held-out scenes, the last ones in a subfolder. */
const DEMO_WORLD_IMAGES = 15;
const DEMO_SUBFOLDER_FROM = 12;

function demoImageFile(i: number): string {
  const name = `world-${WORLD_HELD_OUT_SEED + i}.png`;
  return i >= DEMO_SUBFOLDER_FROM ? `more/${name}` : name;
}

/** The deliberately broken image: an image extension, but text inside. */
export const DEMO_BROKEN_IMAGE = 'broken.jpg';

/** The demo holds I->QA replies with the method's own grammar (every question shape, options included). */
export const DEMO_GRAMMAR = QA_REPLY_GRAMMAR;

/** Decoding and grammar of the demo: the world's replies are short, so the whole run takes seconds on a laptop CPU. */
export const DEMO_SETTINGS: {
  parallel: number;
  grammar: string;
  decoding: Partial<Record<TaskName, Omit<SamplingOptions, 'seed' | 'grammar'>>>;
  keepTop: number;
} = {
  parallel: 4,
  grammar: DEMO_GRAMMAR,
  decoding: { iToQa: { maxTokens: 160 }, iaToQ: { maxTokens: 64 }, iqToA: { maxTokens: 96 } },
  keepTop: 0.5,
};

/** Copies the world model into `dir/demo-models` and writes held-out world images into `dir/demo-images`. */
export async function writeDemoAssets(dir: string): Promise<DemoAssets> {
  const modelsDir = path.join(dir, 'demo-models');
  const imagesDir = path.join(dir, 'demo-images');
  await mkdir(modelsDir, { recursive: true });
  const files = {} as Record<keyof typeof WORLD_MODEL_FILES, string>;
  for (const [key, name] of Object.entries(WORLD_MODEL_FILES) as Array<[keyof typeof WORLD_MODEL_FILES, string]>) {
    const from = path.join(worldModelDir(), name);
    files[key] = path.join(modelsDir, name);
    try {
      await copyFile(from, files[key]);
    } catch (cause) {
      throw new SrfError('FILE_NOT_FOUND', `the demo's world model file is missing from the package (${(cause as NodeJS.ErrnoException).code})`, { file: from, cause });
    }
  }
  for (let i = 0; i < DEMO_WORLD_IMAGES; i++) {
    const file = path.join(imagesDir, demoImageFile(i));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, await renderScenePng(generateScene(WORLD_HELD_OUT_SEED + i)));
  }
  await writeFile(path.join(imagesDir, DEMO_BROKEN_IMAGE), 'this is not an image: it shows how a bad file becomes an error line\n');
  // "Original" data for --merge-with: three world records (one text-only), as mix665k would give,
  // in a folder of their own beside their images (a LLaVA file's image paths are relative to its
  // own folder unless told otherwise); training scenes, not the held-out ones the run sees.
  const originalDir = path.join(dir, 'demo-original');
  await mkdir(originalDir, { recursive: true });
  const original = path.join(originalDir, 'original.llava.json');
  const { images: originalImages, records } = buildWorldData({ count: 2, firstSeed: 0 });
  for (const image of originalImages) await writeFile(path.join(originalDir, image.file), await renderScenePng(image.scene));
  const records3 = [
    ...records.filter((r) => r.image !== undefined).slice(0, 2),
    { id: 'world-text-0', conversations: [{ from: 'human', value: 'How many sides does a triangle have?' }, { from: 'gpt', value: 'A triangle has three sides.' }] },
  ];
  await writeFile(original, `${JSON.stringify(records3, null, 1)}\n`);
  return { model: files.model, mmproj: files.mmproj, embedder: files.embedder, images: imagesDir, original };
}

/** How many demo input files there are (good + broken). */
export const DEMO_IMAGE_COUNT = DEMO_WORLD_IMAGES + 1;
