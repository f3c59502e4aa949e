/**
 * The world model's shape and data sizes: LLaVA-1.5's architecture (CLIP ViT with class token and
 * learned positions, mlp2x_gelu projector, llama decoder) at a size 2 CPU cores train in about half
 * an hour. Python reads the same values from the data folder's config.json.
 */
import { WORLD_HELD_OUT_SEED } from '../../lib/world/model-files.js';

export const WORLD_MODEL = {
  imageSize: 64,
  patchSize: 16,
  /** (64 / 16)^2 patches. */
  imageTokens: 16,
  vision: { nEmbd: 96, nLayer: 3, nHead: 4, nFf: 384, layerNormEps: 1e-5 },
  text: { nEmbd: 128, nLayer: 3, nHead: 4, nFf: 320, rmsEps: 1e-5, ropeFreqBase: 10000, nCtxTrain: 512 },
  vocabSize: 800,
  trainImages: 5000,
  /** Held-out images: seeds from here on. */
  heldOutFirstSeed: WORLD_HELD_OUT_SEED,
} as const;
