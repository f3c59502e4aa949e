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
  totalMemory: number;
}

/**
 * 'auto': per-sequence streams when the model runs on the CPU (~25 % faster there with the
 * attention-heavy bench model, bench/NOTES.md; less where the weights dominate, as for 7B), unless their KV cache would take more than a quarter of the machine's memory
 * (a 7B model at the pipeline's defaults: ~15 GB per-sequence, ~7 GB unified). On a GPU: unified.
 */
export function chooseKvLayout(value: unknown, facts: KvLayoutFacts): KvLayout {
  if (value === 'unified' || value === 'per-sequence') return value;
  if (value !== undefined && value !== 'auto') throw invalidArgument("'auto', 'unified' or 'per-sequence'", 'kvLayout', value);
  if (facts.onGpu) return 'unified';
  return facts.perSequenceBytes <= facts.totalMemory / 4 ? 'per-sequence' : 'unified';
}

