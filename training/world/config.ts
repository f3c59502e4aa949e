/**
 * The world model's shape and data sizes: LLaVA-1.5's architecture (CLIP ViT with class token and
 * learned positions, mlp2x_gelu projector, llama decoder) at a size 2 CPU cores train in about an
 * hour and a half, the vision tower pretrained first and then frozen. Python reads the same values
 * from the data folder's config.json.
 */
import { WORLD_HELD_OUT_SEED } from '../../lib/world/model-files.js';

export const WORLD_MODEL = {
  imageSize: 64,
  patchSize: 16,
  /** (64 / 16)^2 patches. */
  imageTokens: 16,
  /** 4 blocks stored, 3 run (LLaVA's second-to-last layer). */
  vision: { nEmbd: 128, nLayer: 4, nHead: 4, nFf: 512, layerNormEps: 1e-5 },
  text: { nEmbd: 128, nLayer: 3, nHead: 4, nFf: 320, rmsEps: 1e-5, ropeFreqBase: 10000, nCtxTrain: 512 },
  vocabSize: 800,
  trainImages: 20000,
  /** Held-out images: seeds from here on. */
  heldOutFirstSeed: WORLD_HELD_OUT_SEED,
  /** Held-out scenes for the validation loss and the vision probes (after the demo's, parity's and the evaluation's). */
  validationFirstSeed: WORLD_HELD_OUT_SEED + 5000,
  validationImages: 1000,
} as const;
