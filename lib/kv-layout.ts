// Which KV cache layout VisionModel.open uses when the caller leaves it to 'auto'.
import { invalidArgument } from './errors.js';
import type { VisionModelFileInfo } from './gguf/check.js';
import type { KvLayout } from './types.js';

/** Bytes of F16 K and V that one KV cell holds for this text model. */
export function kvBytesPerCell(text: Pick<VisionModelFileInfo['text'], 'nEmbd' | 'nLayer' | 'nHead' | 'nHeadKv'>): number {
  const headDim = text.nHead > 0 ? text.nEmbd / text.nHead : text.nEmbd;
  const kvHeads = text.nHeadKv > 0 ? text.nHeadKv : Math.max(1, text.nHead);
  return 2 * text.nLayer * headDim * kvHeads * 2;
}

export interface KvLayoutFacts {
  /** The text model is offloaded to a GPU. */
  onGpu: boolean;
  /** KV bytes the per-sequence layout would allocate. */
  perSequenceBytes: number;
  /** The machine's RAM. */
  totalMemory: number;
  /** Free memory of the GPUs the model is offloaded to, together (used when onGpu). */
  gpuMemoryFree?: number;
  /** Bytes of the weights (model + projector files), which share that GPU memory. */
  weightBytes?: number;
}

/**
 * 'auto': per-sequence streams wherever their larger KV cache fits, since each sequence's
 * attention (and each new image's prefill) then reads only its own cells: on CPU ~25 % faster with
 * the attention-heavy bench model (bench/NOTES.md; less where the weights dominate), on an H200
 * with LLaVA-1.5-7B Q4_K_M 2.0x (5.23 vs 2.58 triplets/s: a unified cache makes every prefill
 * attend over all cached cells). "Fits": on CPU at most a quarter of RAM (7B at the pipeline's
 * defaults: ~15 GB per-sequence, ~7 GB unified); on a GPU, KV plus weights within 80 % of its
 * free memory (7B at the bench's 32 sequences: 40 + 4 GB, fine on 80 GB, not on 24 GB).
 */
export function chooseKvLayout(value: unknown, facts: KvLayoutFacts): KvLayout {
  if (value === 'unified' || value === 'per-sequence') return value;
  if (value !== undefined && value !== 'auto') throw invalidArgument("'auto', 'unified' or 'per-sequence'", 'kvLayout', value);
  if (facts.onGpu) {
    const free = facts.gpuMemoryFree ?? 0;
    return facts.perSequenceBytes + (facts.weightBytes ?? 0) <= 0.8 * free ? 'per-sequence' : 'unified';
  }
  return facts.perSequenceBytes <= facts.totalMemory / 4 ? 'per-sequence' : 'unified';
}
