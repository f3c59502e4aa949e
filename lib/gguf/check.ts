/**
 * Validation of model files before any native code sees them. Everything llama.cpp would
 * reject with a log line and a NULL (or, worse, an assertion that ends the process) is
 * reported here as an SrfError naming the file and saying what to do.
 *
 * The rules follow llama.cpp 0.4.0: src/llama-model.cpp (hparams), src/llama-adapter.cpp (LoRA
 * pairing and shapes), tools/mtmd/clip.cpp (mmproj keys and tensors), tools/mtmd/mtmd.cpp
 * (projector width == text model width).
 */
import { isLoraTarget, llamaWeightDims } from './llama-weights.js';
import { SrfError } from '../errors.js';
import { CLIP_PROJECTOR_TYPES, EMBEDDER_ARCHS, LLAMA_CPP_ARCHS, NOT_A_LANGUAGE_MODEL } from './archs.js';
import { GgmlType, GgufValueType, PoolingType } from './constants.js';
import { checkProjectorTensors } from './projectors.js';
import { findTensor, metaArray, metaBool, metaNumber, metaString, readGgufInfo } from './reader.js';
import type { GgufInfo } from './types.js';

export interface TextModelFileInfo {
  path: string;
  arch: string;
  nEmbd: number;
  nLayer: number;
  nCtxTrain: number;
  vocabSize: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  /**
   * The width image embeddings must have: nEmbd, or nEmbd x (1 + deepstack layers) for Qwen3-VL
   * (llama_model_n_embd_inp, which mtmd compares with the projector's width).
   */
  nEmbdInput: number;
  /** tokenizer.chat_template, when the file carries one. */
  chatTemplate: string | undefined;
  /** Every tensor's dimensions (ggml order), for checking adapters against the model. */
  tensorDims: ReadonlyMap<string, readonly number[]>;
}

export interface VisionEncoderFileInfo {
  path: string;
  imageSize: number;
  patchSize: number;
  /**
   * Embeddings one image becomes: (imageSize / patchSize)^2 for the mlp projector (576 for
   * LLaVA-1.5), a quarter of that for ldp/ldpv2. For other projectors: the patch count before
   * the projector merges patches (an upper bound).
   */
  imageTokens: number;
  projectorType: string;
  /** Width of the projected image embeddings; must equal the text model's nEmbd. Undefined when not known for the projector type. */
  projectorWidth: number | undefined;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  nEmbd: number;
  nLayer: number;
  /** clip.vision.image_grid_pinpoints is there: LLaVA-1.6's tiled ("anyres") images. */
  gridPinpoints: boolean;
}

export interface VisionModelFileInfo {
  text: TextModelFileInfo;
  vision: VisionEncoderFileInfo;
}

export interface LoraFileInfo {
  path: string;
  arch: string;
  alpha: number;
  rank: number;
  /** Base weights the adapter changes, e.g. "blk.0.attn_q.weight". */
  targets: string[];
}

export type PoolingTypeName = 'none' | 'mean' | 'cls' | 'last' | 'rank' | 'unspecified';

export interface EmbedderFileInfo {
  path: string;
  arch: string;
  nEmbd: number;
  nLayer: number;
  nCtxTrain: number;
  vocabSize: number;
  poolingType: PoolingTypeName;
}

// ---------------------------------------------------------------------------------------------
// helpers

function describeKind(info: GgufInfo): string {
  if (metaString(info, 'general.type') === 'adapter') {
    const type = metaString(info, 'adapter.type');
    return `${type ? `a ${type}` : 'an'} adapter for ${info.architecture ?? 'an unknown architecture'}`;
  }
  const arch = info.architecture;
  if (arch === undefined) return 'a GGUF file without general.architecture';
  const known = NOT_A_LANGUAGE_MODEL.get(arch);
  if (known) return known;
  if (LLAMA_CPP_ARCHS.has(arch)) return `a text model (${arch})`;
  return `a model of architecture "${arch}"`;
}

function requireNumber(info: GgufInfo, key: string, code: 'GGUF_INVALID' | 'MMPROJ_INVALID'): number {
  const v = metaNumber(info, key);
  if (v === undefined) {
    throw new SrfError(code, `the key "${key}" is missing or not a number; llama.cpp needs it to load the file`, {
      file: info.path,
    });
  }
  return v;
}

/** A per-model value that may be stored per layer (an array): the first layer's value. */
function scalarOrFirst(info: GgufInfo, key: string): number | undefined {
  const n = metaNumber(info, key);
  if (n !== undefined) return n;
  const arr = metaArray(info, key);
  const first = arr && arr.length > 0 ? arr[0] : undefined;
  return typeof first === 'number' ? first : typeof first === 'bigint' ? Number(first) : undefined;
}

function float3(info: GgufInfo, key: string): [number, number, number] {
  const e = info.metadata.get(key);
  if (!e || e.type !== GgufValueType.ARRAY || e.arrayType !== GgufValueType.FLOAT32 || e.value.length < 3) {
    throw new SrfError('MMPROJ_INVALID', `"${key}" must be an array of at least 3 f32 values (clip.cpp refuses the file otherwise)`, {
      file: info.path,
    });
  }
  const v = e.value as ArrayLike<number>;
  return [v[0]!, v[1]!, v[2]!];
}

function dimsText(dims: readonly number[]): string {
  return dims.join('x');
}

// ---------------------------------------------------------------------------------------------
// text model

/** Check a GGUF as the language model of a LLaVA pair. */
export async function checkTextModelFile(path: string): Promise<TextModelFileInfo> {
  return textModelInfo(await readGgufInfo(path));
}

function textModelInfo(info: GgufInfo): TextModelFileInfo {
  const file = info.path;
  if (metaString(info, 'general.type') === 'adapter') {
    throw new SrfError(
      'MODEL_ARCH_UNSUPPORTED',
      `this is ${describeKind(info)}, not a model: pass the base model as --model and this file as a LoRA (--lora)`,
      { file },
    );
  }
  const arch = info.architecture;
  if (arch === undefined) {
    throw new SrfError('GGUF_INVALID', 'the file has no general.architecture key, so llama.cpp cannot load it', { file });
  }
  if (arch === 'clip') {
    throw new SrfError(
      'MODEL_ARCH_UNSUPPORTED',
      'this is an mmproj (clip) file, not a language model; pass it as --mmproj and the language model GGUF as --model',
      { file },
    );
  }
  const notLm = NOT_A_LANGUAGE_MODEL.get(arch);
  if (notLm) {
    throw new SrfError(
      'MODEL_ARCH_UNSUPPORTED',
      `this is ${notLm}, which cannot be LLaVA's language model; pass a text generation model (e.g. llama) as --model` +
        (EMBEDDER_ARCHS.has(arch) ? ' (this file can serve as the embedder)' : ''),
      { file },
    );
  }
  if (!LLAMA_CPP_ARCHS.has(arch)) {
    throw new SrfError(
      'MODEL_ARCH_UNSUPPORTED',
      `architecture "${arch}" is not supported by the bundled llama.cpp; use a model of a supported architecture such as llama`,
      { file },
    );
  }
  const nEmbd = requireNumber(info, `${arch}.embedding_length`, 'GGUF_INVALID');
  const nLayer = requireNumber(info, `${arch}.block_count`, 'GGUF_INVALID');
  const nCtxTrain = requireNumber(info, `${arch}.context_length`, 'GGUF_INVALID');
  const vocabSize = metaNumber(info, `${arch}.vocab_size`) ?? metaArray(info, 'tokenizer.ggml.tokens')?.length;
  if (vocabSize === undefined) {
    throw new SrfError('GGUF_INVALID', 'the file has no vocabulary (tokenizer.ggml.tokens); it cannot be used for text generation', {
      file,
    });
  }
  const nHead = scalarOrFirst(info, `${arch}.attention.head_count`) ?? 0;
  const nHeadKv = scalarOrFirst(info, `${arch}.attention.head_count_kv`) ?? nHead;
  const nFf = scalarOrFirst(info, `${arch}.feed_forward_length`) ?? 0;

  const embd = findTensor(info, 'token_embd.weight');
  if (embd && embd.dims[0] !== nEmbd) {
    throw new SrfError(
      'GGUF_INVALID',
      `token_embd.weight is ${dimsText(embd.dims)} but ${arch}.embedding_length is ${nEmbd}: the file is inconsistent`,
      { file },
    );
  }
  const tensorDims = new Map<string, readonly number[]>();
  for (const t of info.tensors) tensorDims.set(t.name, t.dims);
  const nEmbdInput = nEmbd * (1 + (metaNumber(info, `${arch}.n_deepstack_layers`) ?? 0));
  const chatTemplate = metaString(info, 'tokenizer.chat_template') || undefined;
  return { path: file, arch, nEmbd, nLayer, nCtxTrain, vocabSize, nHead, nHeadKv, nFf, nEmbdInput, chatTemplate, tensorDims };
}

// ---------------------------------------------------------------------------------------------
// mmproj

/** Check a GGUF as a vision encoder + projector (mmproj). */
export async function checkMmprojFile(path: string): Promise<VisionEncoderFileInfo> {
  return mmprojInfo(await readGgufInfo(path));
}

function mmprojInfo(info: GgufInfo): VisionEncoderFileInfo {
  const file = info.path;
  const arch = info.architecture;
  if (metaString(info, 'general.type') === 'adapter') {
    throw new SrfError('MMPROJ_INVALID', `this is ${describeKind(info)}, not an mmproj; pass it as a LoRA (--lora)`, { file });
  }
  if (arch !== 'clip') {
    const kind = describeKind(info);
    const hint =
      arch !== undefined && LLAMA_CPP_ARCHS.has(arch) && !NOT_A_LANGUAGE_MODEL.has(arch)
        ? '; pass it as --model and the clip mmproj GGUF as --mmproj'
        : '; pass the mmproj GGUF (general.architecture = clip) that belongs to the model as --mmproj';
    throw new SrfError('MMPROJ_INVALID', `this is ${kind}, not an mmproj${hint}`, { file });
  }
  if (metaBool(info, 'clip.has_vision_encoder') !== true) {
    throw new SrfError('MMPROJ_INVALID', 'this mmproj has no vision encoder (clip.has_vision_encoder is not true): it cannot encode images', {
      file,
    });
  }
  const projectorType = metaString(info, 'clip.projector_type') || metaString(info, 'clip.vision.projector_type');
  if (!projectorType) {
    throw new SrfError('MMPROJ_INVALID', 'the mmproj names no projector (clip.projector_type); convert it again with a current converter', {
      file,
    });
  }
  if (!CLIP_PROJECTOR_TYPES.has(projectorType)) {
    throw new SrfError('MMPROJ_INVALID', `unknown projector type "${projectorType}"; the bundled llama.cpp cannot use this mmproj`, {
      file,
    });
  }

  const nEmbd = requireNumber(info, 'clip.vision.embedding_length', 'MMPROJ_INVALID');
  const nHead = requireNumber(info, 'clip.vision.attention.head_count', 'MMPROJ_INVALID');
  const nFf = requireNumber(info, 'clip.vision.feed_forward_length', 'MMPROJ_INVALID');
  const nLayer = requireNumber(info, 'clip.vision.block_count', 'MMPROJ_INVALID');
  requireNumber(info, 'clip.vision.projection_dim', 'MMPROJ_INVALID');
  requireNumber(info, 'clip.vision.attention.layer_norm_epsilon', 'MMPROJ_INVALID');
  const imageSize = requireNumber(info, 'clip.vision.image_size', 'MMPROJ_INVALID');
  const patchSize = requireNumber(info, 'clip.vision.patch_size', 'MMPROJ_INVALID');
  const imageMean = float3(info, 'clip.vision.image_mean');
  const imageStd = float3(info, 'clip.vision.image_std');
  if (patchSize <= 0 || imageSize < 0 || imageSize > 8192 || nEmbd <= 0 || nHead <= 0 || nEmbd % nHead !== 0) {
    throw new SrfError(
      'MMPROJ_INVALID',
      `implausible vision parameters (image_size ${imageSize}, patch_size ${patchSize}, embedding_length ${nEmbd}, head_count ${nHead})`,
      { file },
    );
  }
  const side = Math.floor(imageSize / patchSize);
  let imageTokens = side * side;
  if (projectorType === 'ldp' || projectorType === 'ldpv2') {
    // MobileVLM's projectors reshape the patches into a fixed 24 x 24 grid (tools/mtmd/models/llava.cpp
    // n_patch = 24): any other grid trips a ggml assertion that ends the process at the first image.
    if (side !== 24) {
      throw new SrfError('MMPROJ_INVALID', `the ${projectorType} (MobileVLM) projector needs a 24 x 24 patch grid (e.g. 336 px images of 14 px patches), but this mmproj has ${side} x ${side} (image_size ${imageSize}, patch_size ${patchSize})`, { file });
    }
    imageTokens = Math.floor(imageTokens / 4);
  }

  let projectorWidth: number | undefined;
  if (projectorType === 'mlp') projectorWidth = checkLlavaTensors(info, { nEmbd, nFf, nLayer, patchSize, nPatches: side * side });
  else if (projectorType === 'ldpv2') {
    // An F32 depthwise-convolution kernel has no CPU implementation: ggml aborts the process scheduling it.
    const peg = findTensor(info, 'mm.model.peg.0.weight');
    if (peg && peg.type !== GgmlType.F16) {
      throw new SrfError('MMPROJ_INVALID', `tensor mm.model.peg.0.weight is ${peg.typeName}, but llama.cpp runs MobileVLM's depthwise convolution only with an F16 kernel (it would abort)`, { file });
    }
    projectorWidth = findTensor(info, 'mm.model.peg.0.bias')?.dims[0];
  }
  else if (projectorType === 'ldp') projectorWidth = findTensor(info, 'mm.model.mb_block.1.block.2.1.bias')?.dims[0];
  else projectorWidth = checkProjectorTensors(info, projectorType, nEmbd, patchSize, nLayer);

  const gridPinpoints = metaArray(info, 'clip.vision.image_grid_pinpoints') !== undefined;
  return { path: file, imageSize, patchSize, imageTokens, projectorType, projectorWidth, imageMean, imageStd, nEmbd, nLayer, gridPinpoints };
}

/**
 * The tensors of a LLaVA (mlp projector) mmproj, as the bundled llama.cpp reads them
 * (tools/mtmd/clip.cpp's loader and models/llava.cpp's graph), with the ggml shapes the graph
 * needs from the header. Required: what the graph dereferences without a null check (a missing
 * q/k/v weight passes the loader, which takes them as optional for fused-qkv models, then crashes
 * the llava graph, which has no fused path), and each block's biases and norms, which every ViT a
 * LLaVA mmproj is made from has (the graph would skip a missing one and answer wrongly without a
 * word). Optional, as the graph treats them and as ViT families differ: the class token, pre- and
 * post-layernorm (SigLIP has no class token and no pre-norm); checked only when present.
 * One table, so the check and its test walk the same list.
 */
interface MmprojTensorRule {
  name: string;
  required: boolean;
  /** Accepted ggml shapes (any one), from the header's hyperparameters. */
  shapes: ReadonlyArray<readonly number[]>;
  /** More rows (ne[1]) than the shape's are fine: positions may outnumber the image's patches. */
  extraRows?: true;
}

export function llavaMmprojTensorRules(h: { nEmbd: number; nFf: number; nLayer: number; patchSize: number; nPositions: number }): MmprojTensorRule[] {
  const { nEmbd: n, nFf: ff } = h;
  const rules: MmprojTensorRule[] = [
    { name: 'v.patch_embd.weight', required: true, shapes: [[h.patchSize, h.patchSize, 3, n]] },
    { name: 'v.position_embd.weight', required: true, shapes: [[n, h.nPositions]], extraRows: true },
    { name: 'v.class_embd', required: false, shapes: [[n]] },
    { name: 'v.pre_ln.weight', required: false, shapes: [[n]] },
    { name: 'v.pre_ln.bias', required: false, shapes: [[n]] },
    { name: 'v.post_ln.weight', required: false, shapes: [[n]] },
    { name: 'v.post_ln.bias', required: false, shapes: [[n]] },
  ];
  for (let i = 0; i < h.nLayer; i++) {
    const b = `v.blk.${i}.`;
    for (const w of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) {
      rules.push({ name: `${b}${w}.weight`, required: true, shapes: [[n, n]] }, { name: `${b}${w}.bias`, required: true, shapes: [[n]] });
    }
    for (const norm of ['ln1', 'ln2']) {
      rules.push({ name: `${b}${norm}.weight`, required: true, shapes: [[n]] }, { name: `${b}${norm}.bias`, required: true, shapes: [[n]] });
    }
    // The legacy converter stores fc1 as ffn_down and fc2 as ffn_up; clip.cpp swaps them back when the
    // shapes say so, so either orientation is accepted (the pair is checked below).
    for (const w of ['ffn_up', 'ffn_down']) {
      rules.push({ name: `${b}${w}.weight`, required: true, shapes: [[n, ff], [ff, n]] }, { name: `${b}${w}.bias`, required: true, shapes: [[ff], [n]] });
    }
  }
  return rules;
}

/**
 * The tensors clip.cpp's llava graph uses, with the shapes that keep ggml's assertions quiet.
 * Returns the projector's output width (mm.2.weight's ne[1], or mm.3's for the Yi-style
 * projector), which mtmd compares with the text model's width.
 */
function checkLlavaTensors(info: GgufInfo, h: { nEmbd: number; nFf: number; nLayer: number; patchSize: number; nPatches: number }): number {
  const file = info.path;
  const missing = (name: string): SrfError =>
    new SrfError('MMPROJ_INVALID', `the mmproj lacks the tensor ${name}, which the LLaVA (mlp) projector needs`, { file });
  const bad = (name: string, dims: readonly number[], want: string): SrfError =>
    new SrfError('MMPROJ_INVALID', `tensor ${name} is ${dimsText(dims)}, expected ${want}: the mmproj is inconsistent`, { file });
  const fitsShape = (dims: readonly number[], shape: readonly number[], extraRows: boolean) =>
    dims.length >= shape.length &&
    shape.every((d, i) => dims[i] === d || (extraRows && i === 1 && (dims[i] as number) > d)) &&
    dims.slice(shape.length).every((d) => d === 1);

  const nPositions = h.nPatches + (findTensor(info, 'v.class_embd') ? 1 : 0);
  for (const rule of llavaMmprojTensorRules({ ...h, nPositions })) {
    const tensor = findTensor(info, rule.name);
    if (!tensor) {
      if (rule.required) throw missing(rule.name);
      continue;
    }
    if (!rule.shapes.some((shape) => fitsShape(tensor.dims, shape, rule.extraRows === true))) {
      throw bad(rule.name, tensor.dims, rule.shapes.map(dimsText).join(' or '));
    }
  }
  for (let i = 0; i < h.nLayer; i++) {
    const up = findTensor(info, `v.blk.${i}.ffn_up.weight`)!;
    const down = findTensor(info, `v.blk.${i}.ffn_down.weight`)!;
    if (up.dims[0] !== down.dims[1]) throw bad(`v.blk.${i}.ffn_up.weight`, up.dims, `the transpose of v.blk.${i}.ffn_down.weight (${dimsText(down.dims)})`);
    for (const w of ['ffn_up', 'ffn_down']) {
      const weight = findTensor(info, `v.blk.${i}.${w}.weight`)!;
      const bias = findTensor(info, `v.blk.${i}.${w}.bias`);
      if (bias && bias.dims[0] !== weight.dims[1]) throw bad(`v.blk.${i}.${w}.bias`, bias.dims, `[${weight.dims[1]}] to match its weight`);
    }
  }

  const mm0 = findTensor(info, 'mm.0.weight');
  if (!mm0) throw missing('mm.0.weight');
  if (!findTensor(info, 'mm.0.bias')) throw missing('mm.0.bias');
  if (mm0.dims[0] !== h.nEmbd) throw bad('mm.0.weight', mm0.dims, `${h.nEmbd}x(hidden)`);
  const mm3 = findTensor(info, 'mm.3.weight');
  if (mm3) {
    // Yi-style projector: mm.0 -> norm mm.1 -> gelu -> mm.3 -> norm mm.4
    for (const name of ['mm.1.weight', 'mm.1.bias', 'mm.3.bias', 'mm.4.weight', 'mm.4.bias']) {
      if (!findTensor(info, name)) throw missing(name);
    }
    return findTensor(info, 'mm.3.bias')!.dims[0]!;
  }
  const mm2 = findTensor(info, 'mm.2.weight');
  if (!mm2) throw missing('mm.2.weight');
  if (!findTensor(info, 'mm.2.bias')) throw missing('mm.2.bias');
  if (mm2.dims[0] !== mm0.dims[1]) throw bad('mm.2.weight', mm2.dims, `${mm0.dims[1]}x(width) to follow mm.0.weight`);
  const mm0b = findTensor(info, 'mm.0.bias')!;
  if (mm0b.dims[0] !== mm0.dims[1]) throw bad('mm.0.bias', mm0b.dims, `[${mm0.dims[1]}] to match mm.0.weight`);
  const mm2b = findTensor(info, 'mm.2.bias')!;
  if (mm2b.dims[0] !== mm2.dims[1]) throw bad('mm.2.bias', mm2b.dims, `[${mm2.dims[1]}] to match mm.2.weight`);
  return mm2.dims[1] ?? 1;
}

// ---------------------------------------------------------------------------------------------
// the pair

/**
 * Check a LLaVA text model and its mmproj: both readable, complete GGUFs of the right kinds,
 * and the projector's output as wide as the text model's embeddings.
 */
export async function checkVisionModelFiles(modelPath: string, mmprojPath: string): Promise<VisionModelFileInfo> {
  // Read both, then report the model's problem first, whichever read finished first.
  const [m, p] = await Promise.allSettled([readGgufInfo(modelPath), readGgufInfo(mmprojPath)]);
  if (m.status === 'rejected') throw m.reason;
  if (p.status === 'rejected') throw p.reason;
  const modelInfo = m.value;
  const mmprojGguf = p.value;
  // Swapped arguments are the most common mistake: say so plainly.
  if (modelInfo.architecture === 'clip' && mmprojGguf.architecture !== 'clip' && mmprojGguf.architecture !== undefined) {
    throw new SrfError(
      'MODEL_ARCH_UNSUPPORTED',
      `this is an mmproj (clip) file and ${mmprojPath} is a text model: the two files are swapped; pass this one as --mmproj and the other as --model`,
      { file: modelPath },
    );
  }
  const text = textModelInfo(modelInfo);
  const vision = mmprojInfo(mmprojGguf);
  if (vision.projectorWidth !== undefined && vision.projectorWidth !== text.nEmbdInput) {
    const width = text.nEmbdInput === text.nEmbd ? `${text.nEmbd} wide (${text.arch}.embedding_length)` : `${text.nEmbdInput} wide (${text.arch}.embedding_length x (1 + n_deepstack_layers))`;
    throw new SrfError(
      'MMPROJ_MISMATCH',
      `this mmproj projects images to ${vision.projectorWidth}-wide embeddings but the text model ${modelPath} is ` +
        `${width}: they do not belong together; use the mmproj made for this model`,
      { file: mmprojPath },
    );
  }
  return { text, vision };
}

// ---------------------------------------------------------------------------------------------
// LoRA

/** The dims llama.cpp's llama_model_llama would give a standard weight, when the model's own are unknown. */
function standardWeightDims(model: TextModelFileInfo, name: string): readonly number[] | undefined {
  const fromFile = model.tensorDims.get(name);
  if (fromFile) return fromFile;
  if (model.tensorDims.size > 0) return undefined;
  if (name === 'token_embd.weight' || name === 'output.weight') return [model.nEmbd, model.vocabSize];
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
  if (!m || Number(m[1]) >= model.nLayer || !isLoraTarget(m[2]!)) return undefined;
  return llamaWeightDims(model, m[2]);
}

/** Check a LoRA adapter against the text model it is meant for (as llama_adapter_lora_init does). */
export async function checkLoraFile(
  loraPath: string,
  model: TextModelFileInfo | VisionModelFileInfo,
): Promise<LoraFileInfo> {
  const text = 'text' in model ? model.text : model;
  const info = await readGgufInfo(loraPath);
  const file = loraPath;
  if (metaString(info, 'general.type') !== 'adapter') {
    throw new SrfError(
      'LORA_INVALID',
      `this is ${describeKind(info)}, not a LoRA adapter (general.type is not "adapter"); convert the LoRA with convert_lora_to_gguf.py`,
      { file },
    );
  }
  const adapterType = metaString(info, 'adapter.type');
  if (adapterType !== 'lora') {
    throw new SrfError('LORA_INVALID', `adapter.type is ${adapterType ? `"${adapterType}"` : 'missing'}; only LoRA adapters are supported`, {
      file,
    });
  }
  if (info.architecture !== text.arch) {
    throw new SrfError(
      'LORA_INVALID',
      `this LoRA is for architecture "${info.architecture ?? '(none)'}" but the model ${text.path} is "${text.arch}"; use a LoRA made for this model`,
      { file },
    );
  }
  const alpha = metaNumber(info, 'adapter.lora.alpha') ?? 0;

  const pairs = new Map<string, { a?: readonly number[]; b?: readonly number[] }>();
  for (const t of info.tensors) {
    const m = /^(.*)\.lora_([ab])$/.exec(t.name);
    if (!m) {
      if (t.name.endsWith('_norm.weight')) continue; // llama.cpp ignores these
      throw new SrfError('LORA_INVALID', `tensor "${t.name}" is not a lora_a/lora_b tensor; llama.cpp refuses the adapter`, { file });
    }
    const p = pairs.get(m[1]!) ?? {};
    if (m[2] === 'a') p.a = t.dims;
    else p.b = t.dims;
    pairs.set(m[1]!, p);
  }
  if (pairs.size === 0) throw new SrfError('LORA_INVALID', 'the adapter contains no LoRA tensors', { file });

  let rank = 0;
  const mismatch = (name: string, detail: string): SrfError =>
    new SrfError(
      'LORA_INVALID',
      `LoRA tensor ${name} does not fit the model ${text.path}: ${detail}; this LoRA was made for another model (size)`,
      { file },
    );
  for (const [name, { a, b }] of pairs) {
    if (!a || !b) throw new SrfError('LORA_INVALID', `the LoRA pair for ${name} lacks its lora_${a ? 'b' : 'a'} tensor`, { file });
    const base = standardWeightDims(text, name);
    if (!base) {
      const layer = /^blk\.(\d+)\./.exec(name);
      const why =
        layer && Number(layer[1]) >= text.nLayer
          ? `the model has only ${text.nLayer} layers`
          : 'the model has no such weight';
      throw mismatch(name, why);
    }
    const baseNe1 = base[1] ?? 1;
    const aNe1 = a[1] ?? 1;
    const bNe1 = b[1] ?? 1;
    if (name.endsWith('token_embd.weight')) {
      if (base[0] !== bNe1 || baseNe1 !== aNe1) {
        throw mismatch(name, `the model's weight is ${dimsText(base)}, the adapter's lora_a is ${dimsText(a)} and lora_b ${dimsText(b)}`);
      }
    } else {
      if (base[0] !== a[0] || baseNe1 !== bNe1) {
        throw mismatch(name, `it adapts a ${a[0]}x${bNe1} weight but the model's is ${dimsText(base)}`);
      }
      if (aNe1 !== b[0]) {
        throw mismatch(name, `lora_a (${dimsText(a)}) and lora_b (${dimsText(b)}) disagree on the rank (lora_a must be transposed)`);
      }
    }
    rank = Math.max(rank, b[0] ?? 0);
  }
  return { path: file, arch: text.arch, alpha, rank, targets: [...pairs.keys()] };
}

// ---------------------------------------------------------------------------------------------
// embedder

const POOLING_NAMES: Record<number, PoolingTypeName> = {
  [PoolingType.NONE]: 'none',
  [PoolingType.MEAN]: 'mean',
  [PoolingType.CLS]: 'cls',
  [PoolingType.LAST]: 'last',
  [PoolingType.RANK]: 'rank',
};

/** Check a BERT-family sentence embedder. */
export async function checkEmbedderFile(path: string): Promise<EmbedderFileInfo> {
  const info = await readGgufInfo(path);
  const file = path;
  const arch = info.architecture;
  if (metaString(info, 'general.type') === 'adapter' || arch === undefined || !EMBEDDER_ARCHS.has(arch)) {
    throw new SrfError(
      'MODEL_ARCH_UNSUPPORTED',
      `this is ${describeKind(info)}, not a BERT-family text embedder (${[...EMBEDDER_ARCHS].join(', ')}); pass an embedding model such as all-MiniLM-L6-v2 or bge-small in GGUF form`,
      { file },
    );
  }
  const nEmbd = requireNumber(info, `${arch}.embedding_length`, 'GGUF_INVALID');
  const nLayer = requireNumber(info, `${arch}.block_count`, 'GGUF_INVALID');
  const nCtxTrain = requireNumber(info, `${arch}.context_length`, 'GGUF_INVALID');
  const vocabSize = metaArray(info, 'tokenizer.ggml.tokens')?.length;
  if (vocabSize === undefined) {
    throw new SrfError('GGUF_INVALID', 'the embedder has no vocabulary (tokenizer.ggml.tokens)', { file });
  }
  const pooling = metaNumber(info, `${arch}.pooling_type`);
  const poolingType: PoolingTypeName = pooling === undefined ? 'unspecified' : (POOLING_NAMES[pooling] ?? 'unspecified');
  return { path: file, arch, nEmbd, nLayer, nCtxTrain, vocabSize, poolingType };
}
