/**
 * Random-weight model files with exactly the metadata keys, tensor names, shapes and types that
 * llama.cpp loads for real LLaVA-1.5 GGUFs (text model from the llama converters, mmproj from
 * tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py), LoRA adapters in the layout of
 * convert_lora_to_gguf.py, and BERT embedders in the layout of the BERT converter.
 *
 * Every generator is deterministic: the same shape and seed give byte-identical files.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { SrfError, invalidArgument } from '../errors.js';
import { GgmlType, LlamaFileType, PoolingType } from './constants.js';
import { metaString, readGgufInfo } from './reader.js';
import { constantFill, normalF16Fill, normalF32Fill } from './random.js';
import { kv, type GgufKv } from './types.js';
import { buildSpmVocab, buildWordPieceVocab, WORDPIECE_SPECIALS, type Vocab } from './vocab.js';
import { planGguf, writeGguf, type GgufLayout, type GgufTensorSpec } from './writer.js';

// ---------------------------------------------------------------------------------------------
// Shapes

export interface LlavaTextShape {
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  vocabSize: number;
  nCtxTrain: number;
  rmsEps: number;
  ropeFreqBase: number;
}

export interface LlavaVisionShape {
  nEmbd: number;
  /** Blocks stored in the file (LLaVA-1.5: 23 of CLIP-L's 24, the last one is dropped). */
  nLayer: number;
  nHead: number;
  nFf: number;
  imageSize: number;
  patchSize: number;
  projectionDim: number;
  layerNormEps: number;
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
}

export interface LlavaShape {
  name: string;
  text: LlavaTextShape;
  vision: LlavaVisionShape;
}

/** CLIP's image normalisation (OpenAI CLIP ViT-L/14, LLaVA-1.5's vision tower). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export const LLAVA_SHAPES = {
  /**
   * For tests on 2 CPU cores: a few MB, loads and runs in milliseconds. 56 px images with
   * 14 px patches give 16 image tokens (clip.cpp accepts any image_size that is a multiple of
   * patch_size). With 2 stored CLIP blocks llama.cpp runs 1 (it stops before the last block,
   * as it does for LLaVA-1.5's 23).
   */
  tiny: {
    name: 'tiny',
    text: { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 4, nFf: 128, vocabSize: 600, nCtxTrain: 4096, rmsEps: 1e-5, ropeFreqBase: 10000 },
    vision: {
      nEmbd: 32,
      nLayer: 2,
      nHead: 2,
      nFf: 64,
      imageSize: 56,
      patchSize: 14,
      projectionDim: 32,
      layerNormEps: 1e-5,
      imageMean: CLIP_MEAN,
      imageStd: CLIP_STD,
    },
  },
  /**
   * LLaVA-1.5's structure at a size 2 CPU cores get through a triplet workload with: the real
   * 32000-token vocabulary, 4096 context, head size 64 and 336 px / 14 px images (576 image
   * tokens, so prompts have the real length), but a text model 768 wide with 6 layers (~91 M
   * parameters, half of them embedding and output; a 185 MB file) and a vision tower 256 wide
   * with 4 blocks. Measured with this project's llama.cpp build on one core of this 2-core
   * machine: image encode + 590-token prefix ~1.0 s, ~21 ms per generated token. A triplet
   * (the image prefix once, then question, answer and check generations of a few dozen tokens,
   * several candidates each) takes several seconds: a few images a minute, slow enough that
   * prefix reuse and batching show, fast enough for repeated runs.
   * (512 wide with 4 layers was ~3x faster: dozens of images a minute, dominated by overheads.)
   */
  'bench-cpu': {
    name: 'bench-cpu',
    text: { nEmbd: 768, nLayer: 6, nHead: 12, nHeadKv: 12, nFf: 2048, vocabSize: 32000, nCtxTrain: 4096, rmsEps: 1e-5, ropeFreqBase: 10000 },
    vision: {
      nEmbd: 256,
      nLayer: 4,
      nHead: 4,
      nFf: 1024,
      imageSize: 336,
      patchSize: 14,
      projectionDim: 256,
      layerNormEps: 1e-5,
      imageMean: CLIP_MEAN,
      imageStd: CLIP_STD,
    },
  },
  /** The real LLaVA-1.5-7B: Vicuna-7B (LLaMA-2 7B shape) and CLIP ViT-L/14-336. ~13.5 GB + 624 MB in F16. */
  'llava-1.5-7b': {
    name: 'llava-1.5-7b',
    text: { nEmbd: 4096, nLayer: 32, nHead: 32, nHeadKv: 32, nFf: 11008, vocabSize: 32000, nCtxTrain: 4096, rmsEps: 1e-5, ropeFreqBase: 10000 },
    vision: {
      nEmbd: 1024,
      nLayer: 23,
      nHead: 16,
      nFf: 4096,
      imageSize: 336,
      patchSize: 14,
      projectionDim: 768,
      layerNormEps: 1e-5,
      imageMean: CLIP_MEAN,
      imageStd: CLIP_STD,
    },
  },
} as const satisfies Record<string, LlavaShape>;

export type LlavaPresetName = keyof typeof LLAVA_SHAPES;

export interface BertShape {
  name: string;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nFf: number;
  nCtxTrain: number;
  /** 0: just the built-in English word list (about 1300 tokens). */
  vocabSize: number;
  layerNormEps: number;
  pooling: 'mean' | 'cls';
}

export const BERT_SHAPES = {
  tiny: { name: 'tiny', nEmbd: 64, nLayer: 2, nHead: 2, nFf: 128, nCtxTrain: 512, vocabSize: 0, layerNormEps: 1e-12, pooling: 'mean' },
  /** all-MiniLM-L6-v2's shape (BERT uncased vocabulary size 30522). */
  minilm: { name: 'minilm', nEmbd: 384, nLayer: 6, nHead: 12, nFf: 1536, nCtxTrain: 512, vocabSize: 30522, layerNormEps: 1e-12, pooling: 'mean' },
} as const satisfies Record<string, BertShape>;

export type BertPresetName = keyof typeof BERT_SHAPES;

/** Image tokens one image becomes: (image_size / patch_size)^2 for the mlp projector. */
export function llavaImageTokens(shape: LlavaShape): number {
  const side = Math.floor(shape.vision.imageSize / shape.vision.patchSize);
  return side * side;
}

// ---------------------------------------------------------------------------------------------
// Plans: metadata + tensor specs, before anything is written

export interface FixturePlan {
  metadata: GgufKv[];
  tensors: GgufTensorSpec[];
  layout: GgufLayout;
}

export interface FixtureOptions {
  /** Default 1. */
  seed?: number;
}

/**
 * A trained model written in the fixture layout (same keys, names, shapes and types): its
 * vocabulary and weights instead of the generator's.
 */
export interface ModelContent {
  /** The vocabulary; its size must be the shape's vocabSize (text model) or is the vocabulary (BERT). */
  vocab?: Vocab;
  /**
   * The values of each tensor in ggml order (torch's row-major layout of the same tensor). Given,
   * every tensor of the plan must be there, and the file carries no fixture key.
   */
  weights?: (name: string, dims: readonly number[]) => Float32Array;
  /** general.name; default names the fixture and its seed. */
  name?: string;
}

export type PlanOptions = FixtureOptions & ModelContent;

/** Standard deviation of random weights (the usual transformer initialisation). */
const WEIGHT_STD = 0.02;
/** Fixture files carry this key, so an existing file can be recognised and reused. */
export const FIXTURE_KEY = 'srf.fixture';
const FIXTURE_VERSION = 1;

function resolveLlava(shape: LlavaShape | LlavaPresetName): LlavaShape {
  if (typeof shape === 'string') {
    const s = (LLAVA_SHAPES as Record<string, LlavaShape>)[shape];
    if (!s) throw invalidArgument(`one of ${Object.keys(LLAVA_SHAPES).join(', ')}`, 'llava shape', shape);
    return s;
  }
  validateLlavaShape(shape);
  return shape;
}

function resolveBert(shape: BertShape | BertPresetName): BertShape {
  if (typeof shape === 'string') {
    const s = (BERT_SHAPES as Record<string, BertShape>)[shape];
    if (!s) throw invalidArgument(`one of ${Object.keys(BERT_SHAPES).join(', ')}`, 'bert shape', shape);
    return s;
  }
  if (shape.nEmbd % shape.nHead !== 0) throw invalidArgument('nEmbd divisible by nHead', 'bert shape', `${shape.nEmbd}/${shape.nHead}`);
  return shape;
}

function validateLlavaShape(s: LlavaShape): void {
  const t = s.text;
  const v = s.vision;
  if (t.nEmbd % t.nHead !== 0 || t.nHead % t.nHeadKv !== 0) {
    throw invalidArgument('text nEmbd divisible by nHead, nHead by nHeadKv', 'llava shape', `${t.nEmbd}/${t.nHead}/${t.nHeadKv}`);
  }
  if (v.nEmbd % v.nHead !== 0) throw invalidArgument('vision nEmbd divisible by nHead', 'llava shape', `${v.nEmbd}/${v.nHead}`);
  if (v.imageSize % v.patchSize !== 0) {
    throw invalidArgument('imageSize a multiple of patchSize', 'llava shape', `${v.imageSize}/${v.patchSize}`);
  }
  if (v.nLayer < 2) throw invalidArgument('at least 2 vision blocks (llama.cpp skips the last)', 'llava shape', v.nLayer);
}

function seedOf(options: FixtureOptions): number {
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0) throw invalidArgument('a non-negative integer', 'seed', seed);
  return seed;
}

function descriptor(kind: string, shape: unknown, seed: number, extra: object = {}): string {
  return JSON.stringify({ generator: 'srf-native', version: FIXTURE_VERSION, kind, shape, seed, ...extra });
}

type Fill = Pick<GgufTensorSpec, 'fill' | 'fillF16'>;

/**
 * A tensor of random weights (F16 matrices, F32 vectors by default). Its random stream depends
 * on the seed, the file kind and the tensor name, so two files never share weights by accident.
 */
function randomTensor(
  seed: number,
  kind: string,
  name: string,
  dims: number[],
  type: 0 | 1 = dims.length >= 2 ? 1 : 0,
  std = WEIGHT_STD,
): GgufTensorSpec {
  const label = `${kind}/${name}`;
  const fill: Fill = type === GgmlType.F16 ? { fillF16: normalF16Fill(seed, label, std) } : { fill: normalF32Fill(seed, label, std) };
  return { name, dims, type, ...fill };
}

function constTensor(name: string, dims: number[], value: number): GgufTensorSpec {
  return { name, dims, type: GgmlType.F32, fill: constantFill(value) };
}

/** Random or given tensors, by the same call: the plans below describe the layout once for both. */
function tensorMaker(seed: number, kind: string, content: ModelContent) {
  const given = (name: string, dims: number[], type: 0 | 1): GgufTensorSpec => {
    const values = content.weights!(name, dims);
    const count = dims.reduce((a, b) => a * b, 1);
    if (values.length !== count) {
      throw invalidArgument(`${count} values for ${name} [${dims.join(', ')}]`, 'weights', `${values.length} values`);
    }
    return { name, dims, type, fill: (dst, start) => dst.set(values.subarray(start, start + dst.length)) };
  };
  return {
    random: (name: string, dims: number[], type: 0 | 1 = dims.length >= 2 ? 1 : 0, std = WEIGHT_STD): GgufTensorSpec =>
      content.weights ? given(name, dims, type) : randomTensor(seed, kind, name, dims, type, std),
    constant: (name: string, dims: number[], value: number): GgufTensorSpec =>
      content.weights ? given(name, dims, GgmlType.F32) : constTensor(name, dims, value),
  };
}

/** The fixture key, unless the weights are given (then the file is no fixture). */
function fixtureKey(content: ModelContent, value: string): GgufKv[] {
  return content.weights ? [] : [kv.str(FIXTURE_KEY, value)];
}

function finish(metadata: GgufKv[], tensors: GgufTensorSpec[]): FixturePlan {
  return { metadata, tensors, layout: planGguf(metadata, tensors) };
}

/** The text model: arch llama, SentencePiece vocabulary, F16 matrices, F32 norms. */
export function planLlavaTextModel(shapeIn: LlavaShape | LlavaPresetName, options: PlanOptions = {}): FixturePlan {
  const shape = resolveLlava(shapeIn);
  const seed = seedOf(options);
  const t = shape.text;
  const headDim = t.nEmbd / t.nHead;
  const nEmbdKv = headDim * t.nHeadKv;
  const vocab = options.vocab ?? buildSpmVocab(t.vocabSize);
  if (vocab.tokens.length !== t.vocabSize || !vocab.scores) {
    throw invalidArgument(`a SentencePiece vocabulary of ${t.vocabSize} tokens`, 'vocab', `${vocab.tokens.length} tokens`);
  }
  const make = tensorMaker(seed, 'text', options);

  const metadata: GgufKv[] = [
    kv.str('general.architecture', 'llama'),
    kv.str('general.name', options.name ?? `srf-native fixture llava ${shape.name} (random weights, seed ${seed})`),
    kv.u32('llama.context_length', t.nCtxTrain),
    kv.u32('llama.embedding_length', t.nEmbd),
    kv.u32('llama.block_count', t.nLayer),
    kv.u32('llama.feed_forward_length', t.nFf),
    kv.u32('llama.rope.dimension_count', headDim),
    kv.u32('llama.attention.head_count', t.nHead),
    kv.u32('llama.attention.head_count_kv', t.nHeadKv),
    kv.f32('llama.attention.layer_norm_rms_epsilon', t.rmsEps),
    kv.f32('llama.rope.freq_base', t.ropeFreqBase),
    kv.u32('general.file_type', LlamaFileType.MOSTLY_F16),
    kv.str('tokenizer.ggml.model', 'llama'),
    kv.array.str('tokenizer.ggml.tokens', vocab.tokens),
    kv.array.f32('tokenizer.ggml.scores', vocab.scores!),
    kv.array.i32('tokenizer.ggml.token_type', vocab.tokenTypes),
    kv.u32('tokenizer.ggml.bos_token_id', 1),
    kv.u32('tokenizer.ggml.eos_token_id', 2),
    kv.u32('tokenizer.ggml.unknown_token_id', 0),
    kv.u32('tokenizer.ggml.padding_token_id', 0),
    kv.bool('tokenizer.ggml.add_bos_token', true),
    kv.bool('tokenizer.ggml.add_eos_token', false),
    ...fixtureKey(options, descriptor('llava-text', shape, seed)),
  ];

  // Dimensions as llama.cpp's llama_model_llama::load_arch_tensors creates them (ggml order).
  const tensors: GgufTensorSpec[] = [make.random('token_embd.weight', [t.nEmbd, t.vocabSize])];
  for (let i = 0; i < t.nLayer; i++) {
    const p = `blk.${i}.`;
    tensors.push(
      make.constant(`${p}attn_norm.weight`, [t.nEmbd], 1),
      make.random(`${p}attn_q.weight`, [t.nEmbd, t.nEmbd]),
      make.random(`${p}attn_k.weight`, [t.nEmbd, nEmbdKv]),
      make.random(`${p}attn_v.weight`, [t.nEmbd, nEmbdKv]),
      make.random(`${p}attn_output.weight`, [t.nEmbd, t.nEmbd]),
      make.constant(`${p}ffn_norm.weight`, [t.nEmbd], 1),
      make.random(`${p}ffn_gate.weight`, [t.nEmbd, t.nFf]),
      make.random(`${p}ffn_up.weight`, [t.nEmbd, t.nFf]),
      make.random(`${p}ffn_down.weight`, [t.nFf, t.nEmbd]),
    );
  }
  tensors.push(make.constant('output_norm.weight', [t.nEmbd], 1), make.random('output.weight', [t.nEmbd, t.vocabSize]));
  return finish(metadata, tensors);
}

/**
 * The mmproj, in the legacy converter's layout: projector first, then the vision tower with
 * HF CLIP's parameter order; 4-D and 2-D ".weight" tensors F16, everything else F32; no
 * post-layernorm (the converter drops it for LLaVA); fc1/fc2 stored under the swapped names
 * ffn_down/ffn_up, which clip.cpp detects (ffn_down.weight's ne[0] == n_embd) and swaps back.
 */
export function planLlavaMmproj(shapeIn: LlavaShape | LlavaPresetName, options: PlanOptions = {}): FixturePlan {
  const shape = resolveLlava(shapeIn);
  const seed = seedOf(options);
  const make = tensorMaker(seed, 'mmproj', options);
  const v = shape.vision;
  const nText = shape.text.nEmbd;
  const nPos = llavaImageTokens(shape) + 1; // + class embedding

  const metadata: GgufKv[] = [
    kv.str('general.architecture', 'clip'),
    kv.bool('clip.has_text_encoder', false),
    kv.bool('clip.has_vision_encoder', true),
    kv.bool('clip.has_llava_projector', true),
    kv.u32('general.file_type', LlamaFileType.MOSTLY_F16),
    kv.str('general.name', options.name ?? `srf-native fixture llava ${shape.name} mmproj (random weights, seed ${seed})`),
    kv.str('general.description', 'image encoder for LLaVA'),
    kv.str('clip.projector_type', 'mlp'),
    kv.u32('clip.vision.image_size', v.imageSize),
    kv.u32('clip.vision.patch_size', v.patchSize),
    kv.u32('clip.vision.embedding_length', v.nEmbd),
    kv.u32('clip.vision.feed_forward_length', v.nFf),
    kv.u32('clip.vision.projection_dim', v.projectionDim),
    kv.u32('clip.vision.attention.head_count', v.nHead),
    kv.f32('clip.vision.attention.layer_norm_epsilon', v.layerNormEps),
    kv.u32('clip.vision.block_count', v.nLayer),
    kv.array.f32('clip.vision.image_mean', v.imageMean),
    kv.array.f32('clip.vision.image_std', v.imageStd),
    kv.bool('clip.use_gelu', false),
    ...fixtureKey(options, descriptor('llava-mmproj', shape, seed)),
  ];

  const tensors: GgufTensorSpec[] = [
    make.random('mm.0.weight', [v.nEmbd, nText]),
    make.random('mm.0.bias', [nText]),
    make.random('mm.2.weight', [nText, nText]),
    make.random('mm.2.bias', [nText]),
    make.random('v.class_embd', [v.nEmbd]),
    make.random('v.patch_embd.weight', [v.patchSize, v.patchSize, 3, v.nEmbd]),
    make.random('v.position_embd.weight', [v.nEmbd, nPos]),
    make.constant('v.pre_ln.weight', [v.nEmbd], 1),
    make.constant('v.pre_ln.bias', [v.nEmbd], 0),
  ];
  for (let i = 0; i < v.nLayer; i++) {
    const p = `v.blk.${i}.`;
    for (const w of ['attn_k', 'attn_v', 'attn_q', 'attn_out']) {
      tensors.push(make.random(`${p}${w}.weight`, [v.nEmbd, v.nEmbd]), make.random(`${p}${w}.bias`, [v.nEmbd]));
    }
    tensors.push(
      make.constant(`${p}ln1.weight`, [v.nEmbd], 1),
      make.constant(`${p}ln1.bias`, [v.nEmbd], 0),
      // fc1 (n_embd -> n_ff) under the legacy name ffn_down, fc2 (n_ff -> n_embd) as ffn_up
      make.random(`${p}ffn_down.weight`, [v.nEmbd, v.nFf]),
      make.random(`${p}ffn_down.bias`, [v.nFf]),
      make.random(`${p}ffn_up.weight`, [v.nFf, v.nEmbd]),
      make.random(`${p}ffn_up.bias`, [v.nEmbd]),
      make.constant(`${p}ln2.weight`, [v.nEmbd], 1),
      make.constant(`${p}ln2.bias`, [v.nEmbd], 0),
    );
  }
  return finish(metadata, tensors);
}

/** Weight names a LoRA can target, with their [in, out] sizes for a text shape. */
export const LORA_TARGETS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export function llamaWeightDims(text: LlavaTextShape, target: LoraTarget): [number, number] {
  const kvDim = (text.nEmbd / text.nHead) * text.nHeadKv;
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

export interface LoraFixtureOptions extends FixtureOptions {
  /** Default 8. */
  rank?: number;
  /** adapter.lora.alpha; llama.cpp scales the update by alpha / rank. Default 2 * rank. */
  alpha?: number;
  /** Weights to adapt in every layer. Default all seven attention and FFN matrices. */
  targets?: readonly LoraTarget[];
  /**
   * Standard deviation of lora_a and lora_b. Default 0.1: with rank 8 and alpha 16 the update is
   * a few times larger than the 0.02-initialised base weights' output, enough to change the
   * greedy continuation of the tiny model.
   */
  std?: number;
}

/** A LoRA adapter for a llava text shape: blk.N.<w>.weight.lora_a [in, r] and .lora_b [r, out] (random, or trained `weights`). */
export function planLlavaLora(shapeIn: LlavaShape | LlavaPresetName, options: LoraFixtureOptions & Omit<ModelContent, 'vocab'> = {}): FixturePlan {
  const shape = resolveLlava(shapeIn);
  const seed = seedOf(options);
  const rank = options.rank ?? 8;
  const alpha = options.alpha ?? 2 * rank;
  const targets = options.targets ?? LORA_TARGETS;
  const std = options.std ?? 0.1;
  if (!Number.isInteger(rank) || rank < 1) throw invalidArgument('a positive integer', 'rank', rank);
  for (const t of targets) if (!LORA_TARGETS.includes(t)) throw invalidArgument(`one of ${LORA_TARGETS.join(', ')}`, 'lora target', t);

  const metadata: GgufKv[] = [
    kv.str('general.architecture', 'llama'),
    kv.str('general.type', 'adapter'),
    kv.str('general.name', options.name ?? `srf-native fixture lora for llava ${shape.name} (rank ${rank}, seed ${seed})`),
    kv.str('adapter.type', 'lora'),
    kv.f32('adapter.lora.alpha', alpha),
    ...fixtureKey(options, descriptor('llava-lora', shape.text, seed, { rank, alpha, targets, std })),
  ];
  const make = tensorMaker(seed, 'lora', options);
  const tensors: GgufTensorSpec[] = [];
  for (let i = 0; i < shape.text.nLayer; i++) {
    for (const target of targets) {
      const [inDim, outDim] = llamaWeightDims(shape.text, target);
      const base = `blk.${i}.${target}.weight`;
      tensors.push(
        make.random(`${base}.lora_a`, [inDim, rank], GgmlType.F32, std),
        make.random(`${base}.lora_b`, [rank, outDim], GgmlType.F32, std),
      );
    }
  }
  return finish(metadata, tensors);
}

/** A BERT embedder as llama.cpp's llama_model_bert::load_arch_tensors loads it. */
export function planBertEmbedder(shapeIn: BertShape | BertPresetName, options: PlanOptions = {}): FixturePlan {
  const shape = resolveBert(shapeIn);
  const seed = seedOf(options);
  const vocab = options.vocab ?? buildWordPieceVocab(shape.vocabSize);
  const make = tensorMaker(seed, 'bert', options);
  const n = shape.nEmbd;
  const nVocab = vocab.tokens.length;

  const metadata: GgufKv[] = [
    kv.str('general.architecture', 'bert'),
    kv.str('general.name', options.name ?? `srf-native fixture bert ${shape.name} (random weights, seed ${seed})`),
    kv.u32('bert.context_length', shape.nCtxTrain),
    kv.u32('bert.embedding_length', n),
    kv.u32('bert.feed_forward_length', shape.nFf),
    kv.u32('bert.attention.head_count', shape.nHead),
    kv.f32('bert.attention.layer_norm_epsilon', shape.layerNormEps),
    kv.u32('bert.block_count', shape.nLayer),
    kv.bool('bert.attention.causal', false),
    kv.u32('bert.pooling_type', shape.pooling === 'mean' ? PoolingType.MEAN : PoolingType.CLS),
    kv.u32('general.file_type', LlamaFileType.MOSTLY_F16),
    kv.u32('tokenizer.ggml.token_type_count', 2),
    kv.str('tokenizer.ggml.model', 'bert'),
    kv.str('tokenizer.ggml.pre', 'default'),
    kv.array.str('tokenizer.ggml.tokens', vocab.tokens),
    kv.array.i32('tokenizer.ggml.token_type', vocab.tokenTypes),
    kv.u32('tokenizer.ggml.unknown_token_id', WORDPIECE_SPECIALS.unk),
    kv.u32('tokenizer.ggml.bos_token_id', WORDPIECE_SPECIALS.cls),
    kv.u32('tokenizer.ggml.seperator_token_id', WORDPIECE_SPECIALS.sep),
    kv.u32('tokenizer.ggml.padding_token_id', WORDPIECE_SPECIALS.pad),
    kv.u32('tokenizer.ggml.cls_token_id', WORDPIECE_SPECIALS.cls),
    kv.u32('tokenizer.ggml.mask_token_id', WORDPIECE_SPECIALS.mask),
    ...fixtureKey(options, descriptor('bert', shape, seed)),
  ];

  const tensors: GgufTensorSpec[] = [
    make.random('token_embd.weight', [n, nVocab]),
    make.random('token_types.weight', [n, 2], GgmlType.F32),
    make.random('position_embd.weight', [n, shape.nCtxTrain]),
    make.constant('token_embd_norm.weight', [n], 1),
    make.constant('token_embd_norm.bias', [n], 0),
  ];
  for (let i = 0; i < shape.nLayer; i++) {
    const p = `blk.${i}.`;
    for (const w of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) {
      tensors.push(make.random(`${p}${w}.weight`, [n, n]), make.random(`${p}${w}.bias`, [n]));
    }
    tensors.push(
      make.constant(`${p}attn_output_norm.weight`, [n], 1),
      make.constant(`${p}attn_output_norm.bias`, [n], 0),
      make.random(`${p}ffn_up.weight`, [n, shape.nFf]),
      make.random(`${p}ffn_up.bias`, [shape.nFf]),
      make.random(`${p}ffn_down.weight`, [shape.nFf, n]),
      make.random(`${p}ffn_down.bias`, [n]),
      make.constant(`${p}layer_output_norm.weight`, [n], 1),
      make.constant(`${p}layer_output_norm.bias`, [n], 0),
    );
  }
  return finish(metadata, tensors);
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface WriteFixtureOptions extends FixtureOptions {
  /**
   * Keep an existing file when it is complete and was made by this generator with the same
   * shape and seed (default true), instead of writing it again.
   */
  reuse?: boolean;
  onProgress?: (file: string, bytesWritten: number, totalBytes: number) => void;
}

async function writePlan(path: string, plan: FixturePlan, options: WriteFixtureOptions): Promise<string> {
  if (options.reuse ?? true) {
    const want = plan.metadata.find((e) => e.key === FIXTURE_KEY)?.value;
    try {
      const info = await readGgufInfo(path);
      if (metaString(info, FIXTURE_KEY) === want && info.fileSize === plan.layout.fileSize) return path;
    } catch {
      // absent, truncated or foreign: write it
    }
  }
  const onProgress = options.onProgress;
  await writeGguf(path, plan.metadata, plan.tensors, onProgress ? { onProgress: (w, t) => onProgress(path, w, t) } : {});
  return path;
}

/** File name stem, e.g. "llava-tiny-seed7" or "llava-1.5-7b-seed1". */
function stem(kind: string, shapeName: string, seed: number): string {
  return `${shapeName.startsWith(kind) ? shapeName : `${kind}-${shapeName}`}-seed${seed}`;
}

async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new SrfError('FILE_UNREADABLE', `cannot create the fixture folder (${(err as NodeJS.ErrnoException).code})`, {
      file: dir,
      cause: err,
    });
  }
}

/** Write a LLaVA text model and its mmproj into `dir`. */
export async function writeLlavaPair(
  dir: string,
  shapeIn: LlavaShape | LlavaPresetName,
  options: WriteFixtureOptions = {},
): Promise<{ model: string; mmproj: string }> {
  const shape = resolveLlava(shapeIn);
  const seed = seedOf(options);
  await ensureDir(dir);
  const s = stem('llava', shape.name, seed);
  const model = await writePlan(join(dir, `${s}-model-f16.gguf`), planLlavaTextModel(shape, { seed }), options);
  const mmproj = await writePlan(join(dir, `${s}-mmproj-f16.gguf`), planLlavaMmproj(shape, { seed }), options);
  return { model, mmproj };
}

/** Write a LoRA adapter for a llava shape's text model into `dir`. */
export async function writeLlavaLora(
  dir: string,
  shapeIn: LlavaShape | LlavaPresetName,
  options: LoraFixtureOptions & WriteFixtureOptions = {},
): Promise<string> {
  const shape = resolveLlava(shapeIn);
  const seed = seedOf(options);
  await ensureDir(dir);
  const plan = planLlavaLora(shape, options);
  const rank = options.rank ?? 8;
  return writePlan(join(dir, `${stem('llava', shape.name, seed)}-lora-r${rank}.gguf`), plan, options);
}

/** Write a BERT embedder into `dir`. */
export async function writeBertEmbedder(
  dir: string,
  shapeIn: BertShape | BertPresetName,
  options: WriteFixtureOptions = {},
): Promise<string> {
  const shape = resolveBert(shapeIn);
  const seed = seedOf(options);
  await ensureDir(dir);
  return writePlan(join(dir, `${stem('bert', shape.name, seed)}-f16.gguf`), planBertEmbedder(shape, { seed }), options);
}

export interface FixtureSet {
  model: string;
  mmproj: string;
  /** Present when `lora` was requested. */
  lora?: string;
  /** Present when `bert` was requested. */
  embedder?: string;
  llava: LlavaShape;
  bert?: BertShape;
  /** Image tokens per image for the llava shape. */
  imageTokens: number;
}

export interface WriteFixturesOptions extends WriteFixtureOptions {
  /** Default 'tiny'. */
  llava?: LlavaPresetName | LlavaShape;
  /** true for the default LoRA, or LoRA options. Default none. */
  lora?: boolean | Omit<LoraFixtureOptions, 'seed'>;
  /** Default none. */
  bert?: BertPresetName | BertShape | false;
}

/** Everything a test suite or a benchmark needs, in one folder. */
export async function writeFixtures(dir: string, options: WriteFixturesOptions = {}): Promise<FixtureSet> {
  const llava = resolveLlava(options.llava ?? 'tiny');
  const seed = seedOf(options);
  const common: WriteFixtureOptions = { seed };
  if (options.reuse !== undefined) common.reuse = options.reuse;
  if (options.onProgress) common.onProgress = options.onProgress;

  const pair = await writeLlavaPair(dir, llava, common);
  const set: FixtureSet = { ...pair, llava, imageTokens: llavaImageTokens(llava) };
  if (options.lora) {
    const loraOptions = options.lora === true ? {} : options.lora;
    set.lora = await writeLlavaLora(dir, llava, { ...loraOptions, ...common });
  }
  if (options.bert) {
    const bert = resolveBert(options.bert);
    set.bert = bert;
    set.embedder = await writeBertEmbedder(dir, bert, common);
  }
  return set;
}
