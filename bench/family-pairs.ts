/**
 * The benchmark's model families: each family's tiny random-weight pair (fixtures/gguf/family-fixtures.ts)
 * and the options llama.cpp's tools need to treat its images as the engine does. Shared by
 * bench/family-parity.ts and the eval benchmark's --family (bench/run.ts, bench/eval-bench.ts).
 */
import { FIXTURE_FAMILIES, writeFamilyPair, writeLlava16Pair, writeMobileVlmPair } from '../fixtures/gguf/family-fixtures.js';
import { DEFAULT_IMAGE_MAX_TOKENS } from '../lib/engine/families.js';

export { PRINTABLE_ASCII_GRAMMAR } from '../fixtures/gguf/family-fixtures.js';

/**
 * The families that prompt with LLaVA's own vicuna_v1 (their GGUFs carry no template). llama.cpp has no
 * renderer of that exact text (its built-in "vicuna" puts each turn on its own line, LLaVA's
 * conversation joins them with spaces).
 */
export const VICUNA_FAMILIES = ['llava-1.6', 'mobilevlm'] as const;
export const BENCH_FAMILIES = [...FIXTURE_FAMILIES, ...VICUNA_FAMILIES] as const;
export type BenchFamily = (typeof BENCH_FAMILIES)[number];

export function isBenchFamily(name: string): name is BenchFamily {
  return (BENCH_FAMILIES as readonly string[]).includes(name);
}

/** The family's tiny pair (seed 1), written once into `dir`. */
export function writeBenchFamilyPair(dir: string, family: BenchFamily): Promise<{ model: string; mmproj: string }> {
  if (family === 'llava-1.6') return writeLlava16Pair(dir, { seed: 1 });
  if (family === 'mobilevlm') return writeMobileVlmPair(dir, { seed: 1 });
  return writeFamilyPair(dir, family, { seed: 1 });
}

/**
 * llama-server's and llama-mtmd-cli's options for the family's images, as the engine sets them: the
 * dynamic-resolution families (Qwen) get the engine's default cap on image tokens (mtmd's own is 4096).
 */
export function familyImageArgs(family: BenchFamily): string[] {
  return family.startsWith('qwen') ? ['--image-max-tokens', String(DEFAULT_IMAGE_MAX_TOKENS)] : [];
}
