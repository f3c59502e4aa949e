/**
 * The weights of llama.cpp's llama architecture a LoRA adapter can target, and the [in, out] sizes
 * llama_model_llama gives them: what the adapter check (check.ts) expects of an adapter, and what the
 * fixture writer makes one of.
 */
export const LORA_TARGETS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LlamaDims {
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
}

export function isLoraTarget(name: string): name is LoraTarget {
  return (LORA_TARGETS as readonly string[]).includes(name);
}

/** [in, out] of `blk.N.<target>.weight`. */
export function llamaWeightDims(text: LlamaDims, target: LoraTarget): [number, number] {
  const headDim = text.nHead > 0 ? text.nEmbd / text.nHead : text.nEmbd;
  const kvDim = headDim * text.nHeadKv;
  switch (target) {
    case 'attn_q':
    case 'attn_output':
      return [text.nEmbd, text.nEmbd];
    case 'attn_k':
    case 'attn_v':
      return [text.nEmbd, kvDim];
    case 'ffn_gate':
    case 'ffn_up':
      return [text.nEmbd, text.nFf];
    case 'ffn_down':
      return [text.nFf, text.nEmbd];
  }
}
