/**
 * Checks for the options that cross into the native engine. C++ casts a JS number to an int32 or
 * a uint32 there: a NaN, a fraction or a value out of range would be undefined behaviour or a
 * silently different setting, so each is refused here with an INVALID_ARGUMENT naming the option
 * and the value it got.
 */
import { invalidArgument } from '../errors.js';
import { booleanOption, integerOption, numberOption, stringOption } from '../util/validate.js';
import type { NativeGenerateRequest } from './native.js';

/**
 * Candidates kept before top-p when a sampled request does not say (SamplingOptions.topK): llama.cpp's
 * default chain starts with top_k 40 too. An engine setting, so it lives with the engine's checks.
 */
export const DEFAULT_TOP_K = 40;

export const INT32_MAX = 2 ** 31 - 1;
export const UINT32_MAX = 2 ** 32 - 1;

/** The sampling fields of a native request. */
export type CheckedSampling = Pick<NativeGenerateRequest, 'temperature' | 'topP' | 'topK' | 'seed' | 'maxTokens' | 'ignoreEos' | 'grammar'>;

/** The sampling options of one request, checked, with their defaults filled in. */
export function checkSampling(sampling: unknown): CheckedSampling {
  if (sampling !== undefined && (typeof sampling !== 'object' || sampling === null)) throw invalidArgument('an object', 'sampling', sampling);
  const s = (sampling ?? {}) as Record<string, unknown>;
  return {
    temperature: numberOption(s.temperature, 'sampling.temperature', 0, 1e6, 0),
    topP: numberOption(s.topP, 'sampling.topP', 0, 1, 1),
    // Unset: llama.cpp's default chain's 40; 0 (the whole vocabulary) is kept when given.
    topK: integerOption(s.topK, 'sampling.topK', 0, INT32_MAX, DEFAULT_TOP_K),
    seed: integerOption(s.seed, 'sampling.seed', 0, UINT32_MAX, 0),
    maxTokens: integerOption(s.maxTokens, 'sampling.maxTokens', 1, INT32_MAX, 128),
    ignoreEos: booleanOption(s.ignoreEos, 'sampling.ignoreEos', false),
    grammar: stringOption(s.grammar, 'sampling.grammar', ''),
  };
}

/** LoRA scales for an engine with `adapters` adapters: one finite number each. */
export function checkLoraScales(scales: unknown, adapters: number): number[] {
  if (!Array.isArray(scales) || scales.length !== adapters || !scales.every(Number.isFinite)) {
    throw invalidArgument(`an array of ${adapters} finite numbers`, 'scales', scales);
  }
  return [...(scales as number[])];
}
