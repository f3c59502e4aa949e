/**
 * The benchmark's model families: each family's tiny random-weight pair (fixtures/gguf/family-fixtures.ts)
 * and the options llama.cpp's tools need to treat its images as the engine does. Shared by
 * bench/family-parity.ts and the eval benchmark's --family (bench/run.ts, bench/eval-bench.ts).
 */
import { FIXTURE_FAMILIES, writeFamilyPair, writeLlava16Pair, writeMobileVlmPair } from '../fixtures/gguf/family-fixtures.js';
import { DEFAULT_IMAGE_MAX_TOKENS } from '../lib/engine/families.js';
import { VisionModel } from '../lib/index.js';

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

/** A prompt for llama-server: the user's text around the server's media marker. */
export type ServerPrompt = (text: string, marker: string) => string;

/**
 * The pair's own prompt rendering, as the engine renders it (bench/family-parity.ts holds it equal to
 * llama-server's --jinja), with the server's media marker where the image goes. Loads the pair once.
 */
export async function familyServerPrompt(pair: { model: string; mmproj: string }): Promise<ServerPrompt> {
  const model = await VisionModel.open({ ...pair, threads: 1, parallel: 1 });
  const family = model.info.family;
  await model.close();
  return (text, marker) => family.renderPrompt(text).replace('<image>', marker);
}
