/**
 * What the mmproj of each newer family must hold for the bundled llama.cpp to load it and encode an
 * image without dereferencing a missing tensor or tripping a ggml assertion (tools/mtmd/clip.cpp's
 * loader, tools/mtmd/models/{qwen2vl,qwen3vl,siglip}.cpp's graphs), and the width each projects to
 * (clip_n_mmproj_embd). LLaVA's mlp projector has its own table in check.ts.
 */
import { SrfError } from '../errors.js';
import { GgmlType } from './constants.js';
import { findTensor, metaNumber } from './reader.js';
import type { GgufInfo } from './types.js';

function dimsText(dims: readonly number[]): string {
  return dims.join('x');
}

/**
 * The tensors clip.cpp requires of the projectors of the newer families (tools/mtmd/clip.cpp's
 * loader: a tensor it takes as required aborts the load, and some the graph then dereferences),
 * and the width they project to (clip_n_mmproj_embd). Undefined for projectors not listed here.
 */
export const PROJECTOR_TENSORS: Readonly<Record<string, { required: readonly string[]; width: (dims: (name: string) => readonly number[]) => number }>> = {
  qwen2vl_merger: { required: ['v.patch_embd.weight', 'v.patch_embd.weight.1', 'mm.0.weight', 'mm.0.bias', 'mm.2.weight', 'mm.2.bias'], width: (d) => d('mm.2.bias')[0]! },
  'qwen2.5vl_merger': { required: ['v.patch_embd.weight', 'v.patch_embd.weight.1', 'mm.0.weight', 'mm.0.bias', 'mm.2.weight', 'mm.2.bias'], width: (d) => d('mm.2.bias')[0]! },
  // models/qwen3vl.cpp asserts the patch bias and the position table, and adds them.
  qwen3vl_merger: { required: ['v.patch_embd.weight', 'v.patch_embd.weight.1', 'v.patch_embd.bias', 'v.position_embd.weight', 'mm.0.weight', 'mm.0.bias', 'mm.2.weight', 'mm.2.bias'], width: (d) => d('mm.2.bias')[0]! },
  gemma3: { required: ['v.patch_embd.weight', 'v.position_embd.weight', 'mm.input_projection.weight', 'mm.soft_emb_norm.weight'], width: (d) => d('mm.input_projection.weight')[0]! },
  idefics3: { required: ['v.patch_embd.weight', 'v.position_embd.weight', 'mm.model.fc.weight'], width: (d) => d('mm.model.fc.weight')[1]! },
};

/**
 * Tensors a SigLIP tower (gemma3, idefics3) adds to its activations with ggml_add, which the CPU
 * backend aborts the process on unless they are F32 (ggml-cpu binary-ops: "unsupported types").
 */
const ADDED_AS_F32 = ['v.position_embd.weight', 'v.patch_embd.bias'];

/**
 * Each vision block's attention tensors the graphs use without a null check (the loader takes them
 * as optional, for fused-qkv models; the graph then crashes at the first image): q, k and v unless
 * fused, and for Qwen's mergers their biases too (models/qwen2vl.cpp adds them unconditionally).
 */
function blockAttentionTensors(info: GgufInfo, projectorType: string, nLayer: number): string[] {
  const names: string[] = [];
  const withBias = projectorType === 'qwen2vl_merger' || projectorType === 'qwen2.5vl_merger';
  for (let i = 0; i < nLayer; i++) {
    const b = `v.blk.${i}.`;
    // Qwen3-VL's graph reads only the fused q/k/v weight and bias.
    if (projectorType === 'qwen3vl_merger') {
      names.push(`${b}attn_qkv.weight`, `${b}attn_qkv.bias`);
      continue;
    }
    if (findTensor(info, `${b}attn_qkv.weight`)) continue;
    for (const w of ['attn_q', 'attn_k', 'attn_v']) {
      names.push(`${b}${w}.weight`);
      if (withBias) names.push(`${b}${w}.bias`);
    }
  }
  return names;
}

/**
 * The projector matrices' shapes the graphs multiply with (ggml asserts, ending the process, when
 * they do not fit): Qwen's merger takes merge^2 patches at once, Idefics3's takes scale^2, Gemma 3's
 * projects the vision width.
 */
function checkProjectorShapes(info: GgufInfo, projectorType: string, nEmbd: number): void {
  const dims = (name: string) => findTensor(info, name)?.dims;
  const expect = (name: string, axis: number, want: number, why: string) => {
    const d = dims(name);
    if (d && d[axis] !== want) {
      throw new SrfError('MMPROJ_INVALID', `tensor ${name} is ${dimsText(d)}, expected ${want} in dimension ${axis} (${why}): the mmproj is inconsistent`, { file: info.path });
    }
  };
  if (projectorType.startsWith('qwen')) {
    const merge = metaNumber(info, 'clip.vision.spatial_merge_size') ?? 2;
    const hidden = dims('mm.0.weight')![1]!;
    expect('mm.0.weight', 0, nEmbd * merge * merge, `${merge}x${merge} merged patches of width ${nEmbd}`);
    expect('mm.0.bias', 0, hidden, 'to match mm.0.weight');
    expect('mm.2.weight', 0, hidden, 'to follow mm.0.weight');
    expect('mm.2.bias', 0, dims('mm.2.weight')![1]!, 'to match mm.2.weight');
  } else if (projectorType === 'idefics3') {
    const scale = metaNumber(info, 'clip.vision.projector.scale_factor');
    if (scale !== undefined) expect('mm.model.fc.weight', 0, nEmbd * scale * scale, `${scale}x${scale} shuffled patches of width ${nEmbd}`);
  } else if (projectorType === 'gemma3') {
    expect('mm.input_projection.weight', 1, nEmbd, 'the vision width');
    expect('mm.soft_emb_norm.weight', 0, nEmbd, 'the vision width');
  }
}

export function checkProjectorTensors(info: GgufInfo, projectorType: string, nEmbd: number, patchSize: number, nLayer: number): number | undefined {
  const rule = PROJECTOR_TENSORS[projectorType];
  if (!rule) return undefined;
  const file = info.path;
  for (const name of [...rule.required, ...blockAttentionTensors(info, projectorType, nLayer)]) {
    if (!findTensor(info, name)) throw new SrfError('MMPROJ_INVALID', `the mmproj lacks the tensor ${name}, which the ${projectorType} projector needs`, { file });
  }
  if (projectorType === 'qwen3vl_merger' && findTensor(info, 'v.class_embd')) {
    throw new SrfError('MMPROJ_INVALID', 'a qwen3vl_merger mmproj has no v.class_embd (llama.cpp asserts on it at the first image): the file is not a Qwen3-VL mmproj', { file });
  }
  if (projectorType === 'gemma3' || projectorType === 'idefics3') {
    for (const name of ADDED_AS_F32) {
      const tensor = findTensor(info, name);
      if (tensor && tensor.type !== GgmlType.F32) {
        throw new SrfError('MMPROJ_INVALID', `tensor ${name} is ${tensor.typeName}, but the ${projectorType} vision tower needs it as F32 (llama.cpp would abort on it)`, { file });
      }
    }
  }
  const patch = findTensor(info, 'v.patch_embd.weight')!;
  if (patch.dims[0] !== patchSize || patch.dims[1] !== patchSize || patch.dims[3] !== nEmbd) {
    throw new SrfError('MMPROJ_INVALID', `tensor v.patch_embd.weight is ${dimsText(patch.dims)}, expected ${patchSize}x${patchSize}x3x${nEmbd}: the mmproj is inconsistent`, { file });
  }
  checkProjectorShapes(info, projectorType, nEmbd);
  let width = rule.width((name) => findTensor(info, name)!.dims);
  if (projectorType === 'qwen3vl_merger') {
    // Each deepstack layer adds one more embedding width (clip_n_mmproj_embd).
    const deepstack = new Set(info.tensors.flatMap((t) => /^v\.deepstack\.(\d+)\.fc2\.weight$/.exec(t.name)?.[1] ?? []));
    width *= 1 + deepstack.size;
  }
  return width;
}
