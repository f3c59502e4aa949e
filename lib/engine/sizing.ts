// Sizing choices the engine (and `srf-native run`) make when the caller leaves them open: the KV
// cache layout for 'auto', how many sequences to decode together, cached prefixes and KV cells.
import { stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { invalidArgument } from '../errors.js';
import type { VisionModelFileInfo } from '../gguf/check.js';
import { isGpu, type DeviceTarget } from './devices.js';
import { native } from './native.js';
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

/**
 * CPU threads when the caller does not say: every core but one. ggml's threads wait for each other at
 * every op, so one core also busy with the JS thread, sampling and image decoding slows the whole step:
 * on 2 cores, `srf-native run` on 1000 world images took 22.2 s with 2 threads and 12.4 s with 1
 * (bench/NOTES.md, 16).
 */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** Cache sequences llama.cpp allows in one context (running + cached prefixes). */
export const MAX_SEQUENCES = 256;

/** What the sizing defaults need to know about a model and where it will run. */
export interface KvSizing {
  device: DeviceFacts;
  /** Cells per stream in the per-sequence layout. */
  cellsPerSequence: number;
  /** Per-sequence KV bytes for `running` sequences plus `cached` image prefixes. */
  perSequenceBytes: (running: number, cached: number) => number;
}

/** The sizing facts for these model files opened with `gpuLayers` and `requestTokens`. */
export async function kvSizing(files: VisionModelFileInfo, paths: { model: string; mmproj: string }, gpuLayers: number, requestTokens: number, target?: DeviceTarget): Promise<KvSizing> {
  const build = native().buildInfo();
  // A replica pinned to one GPU has that GPU's memory; one on the CPU has none; else llama.cpp splits over all.
  const gpus = build.devices.filter((d) => isGpu(d) && (target === undefined || (target.onGpu && d.name === target.device)));
  const onGpu = gpuLayers !== 0 && build.supportsGpuOffload && gpus.length > 0;
  const device: DeviceFacts = {
    onGpu,
    totalMemory: totalmem(),
    gpuMemoryFree: gpus.reduce((sum, d) => sum + d.memoryFree, 0),
    // Only the GPU choices read it.
    weightBytes: onGpu ? (await stat(paths.model)).size + (await stat(paths.mmproj)).size : 0,
  };
  const cellsPerSequence = perSequenceCells(files.vision.imageTokens, requestTokens);
  const bytesPerCell = kvBytesPerCell(files.text);
  return { device, cellsPerSequence, perSequenceBytes: (running, cached) => (running + cached) * cellsPerSequence * bytesPerCell };
}

/** The sizes one engine is opened with. */
export interface EngineSizes {
  parallel: number;
  prefixCache: number;
  kvLayout: KvLayout;
  contextSize: number;
}

/** What the caller fixed (checked), the rest left to the defaults. */
export interface SizeRequest {
  parallel: number | undefined;
  prefixCache: number | undefined;
  contextSize: number | undefined;
  kvLayout: unknown;
  batchSize: number;
  requestTokens: number;
}

/** Sequences, cached prefixes, KV layout and cells for one engine: what was asked, the rest by memory. */
export function sizeEngine(asked: SizeRequest, files: VisionModelFileInfo, sizing: KvSizing): EngineSizes {
  const imageTokens = files.vision.imageTokens;
  // A given contextSize fixes the memory: the default count stays 8 rather than split it 32 ways.
  // A default count never exceeds the batch (every running sequence puts a token into each step's
  // batch) nor the sequence limit.
  const parallel =
    asked.parallel ??
    Math.min(
      asked.contextSize === undefined ? defaultParallel(sizing.device, (n) => sizing.perSequenceBytes(n, asked.prefixCache ?? n)) : 8,
      asked.batchSize,
      MAX_SEQUENCES - (asked.prefixCache ?? 1),
    );
  const prefixCache = asked.prefixCache ?? Math.min(parallel, MAX_SEQUENCES - parallel);
  const kvLayout = chooseKvLayout(asked.kvLayout, {
    ...sizing.device,
    perSequenceBytes: asked.contextSize !== undefined ? asked.contextSize * kvBytesPerCell(files.text) : sizing.perSequenceBytes(parallel, prefixCache),
  });
  // unified: room for every cached image prefix plus each running sequence's prompt and reply.
  // per-sequence: every sequence (running, or a cached prefix) gets a whole request's room.
  const contextSize =
    asked.contextSize ??
    (kvLayout === 'unified' ? prefixCache * (imageTokens + 64) + parallel * Math.max(512, asked.requestTokens) : (parallel + prefixCache) * sizing.cellsPerSequence);
  return { parallel, prefixCache, kvLayout, contextSize };
}
