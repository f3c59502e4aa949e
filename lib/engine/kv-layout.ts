// Sizing choices VisionModel.open (and `srf-native run`) make when the caller leaves them open:
// the KV cache layout for 'auto', and how many sequences to decode together.
import { invalidArgument } from '../errors.js';
import type { VisionModelFileInfo } from '../gguf/check.js';
import type { KvLayout } from './types.js';

/** Bytes of F16 K and V that one KV cell holds for this text model. */
export function kvBytesPerCell(text: Pick<VisionModelFileInfo['text'], 'nEmbd' | 'nLayer' | 'nHead' | 'nHeadKv'>): number {
  const headDim = text.nHead > 0 ? text.nEmbd / text.nHead : text.nEmbd;
  const kvHeads = text.nHeadKv > 0 ? text.nHeadKv : Math.max(1, text.nHead);
  return 2 * text.nLayer * headDim * kvHeads * 2;
}

/** Cells each sequence's stream gets in the per-sequence layout: its image prefix plus one request. */
export function perSequenceCells(imageTokens: number, requestTokens: number): number {
  return Math.ceil((imageTokens + 64 + requestTokens) / 256) * 256;
}

/** Where the model will run, as far as memory goes. */
export interface DeviceFacts {
  /** The text model is offloaded to a GPU. */
  onGpu: boolean;
  /** The machine's RAM. */
  totalMemory: number;
  /** Free memory of the GPUs the model is offloaded to, together (used when onGpu). */
  gpuMemoryFree?: number;
  /** Bytes of the weights (model + projector files), which share that GPU memory. */
  weightBytes?: number;
}

export interface KvLayoutFacts extends DeviceFacts {
  /** KV bytes the per-sequence layout would allocate. */
  perSequenceBytes: number;
}

/** A per-sequence KV cache of `bytes` fits beside the weights in 80 % of the GPUs' free memory. */
function fitsOnGpu(bytes: number, facts: DeviceFacts): boolean {
  return bytes + (facts.weightBytes ?? 0) <= 0.8 * (facts.gpuMemoryFree ?? 0);
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
  if (facts.onGpu) return fitsOnGpu(facts.perSequenceBytes, facts) ? 'per-sequence' : 'unified';
  return facts.perSequenceBytes <= facts.totalMemory / 4 ? 'per-sequence' : 'unified';
}

/** The sequence counts tried on a GPU, most first. */
export const GPU_PARALLEL_CHOICES = [32, 24, 16] as const;

/**
 * Sequences to decode together when the caller does not say. CPU: 8 (2 cores are saturated well
 * before). GPU: the most of 32, 24, 16 whose per-sequence KV cache (`perSequenceBytesFor(n)`)
 * fits as 'auto' requires, since a decode step there costs about the same for 8 rows as for 32
 * (H200, 7B: 32 sequences gave 5.2 triplets/s, bench/NOTES.md); 8 when none fits.
 */
export function defaultParallel(facts: DeviceFacts, perSequenceBytesFor: (parallel: number) => number): number {
  if (!facts.onGpu) return 8;
  return GPU_PARALLEL_CHOICES.find((n) => fitsOnGpu(perSequenceBytesFor(n), facts)) ?? 8;
}
