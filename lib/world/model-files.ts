/** Where the committed world model lives: models/world of the package (trained by training/world). */
import path from 'node:path';
import { packageRoot } from '../engine/native.js';

export const WORLD_MODEL_FILES = {
  model: 'world-llava-model-f16.gguf',
  mmproj: 'world-llava-mmproj-f16.gguf',
  embedder: 'world-bert-f16.gguf',
} as const;

/** Held-out world images start at this scene seed (training used seeds 0..4999). */
export const WORLD_HELD_OUT_SEED = 1_000_000;

export function worldModelDir(): string {
  return path.join(packageRoot(), 'models', 'world');
}

/** Absolute paths of the world model files in `dir` (default: the committed ones). */
export function worldModelPaths(dir = worldModelDir()): { model: string; mmproj: string; embedder: string } {
  return { model: path.join(dir, WORLD_MODEL_FILES.model), mmproj: path.join(dir, WORLD_MODEL_FILES.mmproj), embedder: path.join(dir, WORLD_MODEL_FILES.embedder) };
}
