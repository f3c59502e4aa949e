/**
 * Held-out world images for the quality benchmark: scenes from seeds no training run used, written as
 * PNG files named after their seed (lib/world/dataset.ts's worldImageFile), so the grader finds each
 * image's ground truth again from its file name alone; the pipeline sees only the pixels.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WORLD_HELD_OUT_SEED } from '../../lib/world/model-files.js';
import { worldImageFile } from '../../lib/world/dataset.js';
import { renderScenePng } from '../../lib/world/render.js';
import { generateScene, type Scene } from '../../lib/world/scene.js';

/**
 * Seed blocks after WORLD_HELD_OUT_SEED (the demo and parity images use its first thousand, the world
 * model's evaluation the next): the filter benchmark's images, round 1's synthetic images, the VQA test.
 */
export const QUALITY_SEEDS = {
  filter: WORLD_HELD_OUT_SEED + 100_000,
  synthetic: WORLD_HELD_OUT_SEED + 200_000,
  vqa: WORLD_HELD_OUT_SEED + 300_000,
} as const;

/** Writes `count` scenes from `firstSeed` on into `dir`; returns the file names. */
export async function writeHeldOutImages(dir: string, firstSeed: number, count: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const scene = generateScene(firstSeed + i);
    const file = worldImageFile(scene.seed);
    await writeFile(path.join(dir, file), await renderScenePng(scene));
    files.push(file);
  }
  return files;
}

/** The scene an image of writeHeldOutImages shows, from its path (null for any other file name). */
export function sceneOfImage(image: string): Scene | null {
  const m = /world-(\d+)\.png$/.exec(image);
  return m ? generateScene(Number(m[1])) : null;
}
