// The fixture generators produce what llama.cpp loads: the expected tensors (names, ggml dims,
// types) and keys for every preset, checked against rules restated here from llama.cpp's
// src/models/llama.cpp, src/models/bert.cpp, src/llama-adapter.cpp and tools/mtmd/clip.cpp.
// The 7B preset is only planned, never written.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import {
  BERT_SHAPES,
  GgmlType,
  GgufValueType,
  LLAVA_SHAPES,
  TokenType,
  buildSpmVocab,
  buildWordPieceVocab,
  llavaImageTokens,
  metaNumber,
  metaString,
  planBertEmbedder,
  planLlavaLora,
  planLlavaMmproj,
  planLlavaTextModel,
  readGgufInfo,
  writeFixtures,
  type FixturePlan,
  type LlavaShape,
} from '../fixtures/gguf/index.js';

const F32 = GgmlType.F32;
const F16 = GgmlType.F16;

function tensorTable(plan: FixturePlan): Map<string, [number[], number]> {
  return new Map(plan.tensors.map((x) => [x.name, [[...x.dims], x.type]]));
}

function keyOf(plan: FixturePlan, key: string) {
  return plan.metadata.find((e) => e.key === key);
}

/** What llama_model_llama::load_arch_tensors creates for a shape (no optional tensors). */
function expectedLlamaTensors(s: LlavaShape): Map<string, [number[], number]> {
  const { nEmbd: E, nFf: F, vocabSize: V, nHead, nHeadKv, nLayer } = s.text;
  const kvDim = (E / nHead) * nHeadKv;
  const m = new Map<string, [number[], number]>([
    ['token_embd.weight', [[E, V], F16]],
    ['output_norm.weight', [[E], F32]],
    ['output.weight', [[E, V], F16]],
  ]);
  for (let i = 0; i < nLayer; i++) {
    m.set(`blk.${i}.attn_norm.weight`, [[E], F32]);
    m.set(`blk.${i}.attn_q.weight`, [[E, E], F16]);
    m.set(`blk.${i}.attn_k.weight`, [[E, kvDim], F16]);
    m.set(`blk.${i}.attn_v.weight`, [[E, kvDim], F16]);
    m.set(`blk.${i}.attn_output.weight`, [[E, E], F16]);
    m.set(`blk.${i}.ffn_norm.weight`, [[E], F32]);
    m.set(`blk.${i}.ffn_gate.weight`, [[E, F], F16]);
    m.set(`blk.${i}.ffn_up.weight`, [[E, F], F16]);
    m.set(`blk.${i}.ffn_down.weight`, [[F, E], F16]);
  }
  return m;
}

/**
 * What the legacy LLaVA converter writes and clip.cpp's llava graph reads: 2-D/4-D weights F16,
 * the rest F32, fc1/fc2 under the swapped names ffn_down/ffn_up, no v.post_ln.
 */
function expectedClipTensors(s: LlavaShape): Map<string, [number[], number]> {
  const { nEmbd: H, nFf: F, nLayer, patchSize: P } = s.vision;
  const T = s.text.nEmbd;
  const m = new Map<string, [number[], number]>([
    ['mm.0.weight', [[H, T], F16]],
    ['mm.0.bias', [[T], F32]],
    ['mm.2.weight', [[T, T], F16]],
    ['mm.2.bias', [[T], F32]],
    ['v.class_embd', [[H], F32]],
    ['v.patch_embd.weight', [[P, P, 3, H], F16]],
    ['v.position_embd.weight', [[H, llavaImageTokens(s) + 1], F16]],
    ['v.pre_ln.weight', [[H], F32]],
    ['v.pre_ln.bias', [[H], F32]],
  ]);
  for (let i = 0; i < nLayer; i++) {
    for (const w of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) {
      m.set(`v.blk.${i}.${w}.weight`, [[H, H], F16]);
      m.set(`v.blk.${i}.${w}.bias`, [[H], F32]);
    }
    for (const ln of ['ln1', 'ln2']) {
      m.set(`v.blk.${i}.${ln}.weight`, [[H], F32]);
      m.set(`v.blk.${i}.${ln}.bias`, [[H], F32]);
    }
    m.set(`v.blk.${i}.ffn_down.weight`, [[H, F], F16]);
    m.set(`v.blk.${i}.ffn_down.bias`, [[F], F32]);
    m.set(`v.blk.${i}.ffn_up.weight`, [[F, H], F16]);
    m.set(`v.blk.${i}.ffn_up.bias`, [[H], F32]);
  }
  return m;
}

for (const [name, shape] of Object.entries(LLAVA_SHAPES) as [string, LlavaShape][]) {
  t.test(`llava preset ${name}: text model as llama.cpp loads it`, async (t) => {
    const plan = planLlavaTextModel(name as keyof typeof LLAVA_SHAPES);
    t.same(tensorTable(plan), expectedLlamaTensors(shape), 'exactly the tensors llama.cpp creates, no extras');
    const u32 = (key: string, value: number) => t.same(keyOf(plan, key), { key, type: GgufValueType.UINT32, value }, key);
    t.same(keyOf(plan, 'general.architecture'), { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' });
    u32('llama.context_length', shape.text.nCtxTrain);
    u32('llama.embedding_length', shape.text.nEmbd);
    u32('llama.block_count', shape.text.nLayer);
    u32('llama.feed_forward_length', shape.text.nFf);
    u32('llama.attention.head_count', shape.text.nHead);
    u32('llama.attention.head_count_kv', shape.text.nHeadKv);
    u32('llama.rope.dimension_count', shape.text.nEmbd / shape.text.nHead); // llama.cpp requires n_rot == head size
    u32('general.file_type', 1);
    u32('tokenizer.ggml.bos_token_id', 1);
    u32('tokenizer.ggml.eos_token_id', 2);
    u32('tokenizer.ggml.unknown_token_id', 0);
    t.equal(keyOf(plan, 'llama.attention.layer_norm_rms_epsilon')?.type, GgufValueType.FLOAT32);
    t.equal(keyOf(plan, 'tokenizer.ggml.model')?.value, 'llama');
    t.equal(keyOf(plan, 'tokenizer.ggml.add_bos_token')?.value, true);
    const tokens = keyOf(plan, 'tokenizer.ggml.tokens');
    t.ok(tokens?.type === GgufValueType.ARRAY && tokens.arrayType === GgufValueType.STRING);
    t.equal((tokens?.value as ArrayLike<string>).length, shape.text.vocabSize, 'vocabulary size = token_embd rows');
    const scores = keyOf(plan, 'tokenizer.ggml.scores');
    t.ok(scores?.type === GgufValueType.ARRAY && scores.arrayType === GgufValueType.FLOAT32, 'scores: f32 array');
    const types = keyOf(plan, 'tokenizer.ggml.token_type');
    t.ok(types?.type === GgufValueType.ARRAY && types.arrayType === GgufValueType.INT32, 'token types: i32 array');
  });

  t.test(`llava preset ${name}: mmproj as clip.cpp loads it`, async (t) => {
    const plan = planLlavaMmproj(name as keyof typeof LLAVA_SHAPES);
    const tensors = tensorTable(plan);
    t.same(tensors, expectedClipTensors(shape), 'the legacy converter layout');
    const v = shape.vision;
    t.equal(tensors.get('mm.2.weight')![0][1], shape.text.nEmbd, 'projector output width == text n_embd (mtmd checks this)');
    t.equal(tensors.get('v.blk.0.ffn_down.weight')![0][0], v.nEmbd, 'ffn_down.ne[0] == n_embd: clip.cpp recognises the legacy fc1/fc2 swap');
    t.notOk([...tensors.keys()].some((n) => n.startsWith('v.post_ln')), 'no post-layernorm (dropped for LLaVA)');
    t.equal(v.nEmbd % v.nHead, 0, 'vision head size is whole');
    t.equal(v.imageSize % v.patchSize, 0, 'whole patches');
    const want: [string, number, unknown][] = [
      ['general.architecture', GgufValueType.STRING, 'clip'],
      ['clip.has_vision_encoder', GgufValueType.BOOL, true],
      ['clip.has_llava_projector', GgufValueType.BOOL, true],
      ['clip.has_text_encoder', GgufValueType.BOOL, false],
      ['clip.projector_type', GgufValueType.STRING, 'mlp'],
      ['clip.use_gelu', GgufValueType.BOOL, false],
      ['clip.vision.image_size', GgufValueType.UINT32, v.imageSize],
      ['clip.vision.patch_size', GgufValueType.UINT32, v.patchSize],
      ['clip.vision.embedding_length', GgufValueType.UINT32, v.nEmbd],
      ['clip.vision.feed_forward_length', GgufValueType.UINT32, v.nFf],
      ['clip.vision.projection_dim', GgufValueType.UINT32, v.projectionDim],
      ['clip.vision.attention.head_count', GgufValueType.UINT32, v.nHead],
      ['clip.vision.block_count', GgufValueType.UINT32, v.nLayer],
      ['clip.vision.attention.layer_norm_epsilon', GgufValueType.FLOAT32, v.layerNormEps],
    ];
    for (const [key, type, value] of want) t.same(keyOf(plan, key), { key, type, value }, key);
    for (const key of ['clip.vision.image_mean', 'clip.vision.image_std']) {
      const e = keyOf(plan, key);
      t.ok(e?.type === GgufValueType.ARRAY && e.arrayType === GgufValueType.FLOAT32 && e.value.length === 3, `${key}: 3 f32`);
    }
  });
}

t.test('the 7B preset has the real LLaVA-1.5-7B shape and sizes', async (t) => {
  const s = LLAVA_SHAPES['llava-1.5-7b'];
  t.equal(llavaImageTokens(s), 576, '336 px / 14 px patches');
  t.equal(s.vision.nLayer, 23, '23 of CLIP-L/14\'s 24 blocks are stored');
  const text = planLlavaTextModel(s);
  const mmproj = planLlavaMmproj(s);
  t.equal(text.tensors.length, 291);
  t.equal(mmproj.tensors.length, 377, 'as clip.cpp logs for the real mmproj-model-f16.gguf');
  // 6.74 B parameters in F16
  t.ok(text.layout.fileSize > 13.4e9 && text.layout.fileSize < 13.6e9, `text model ${text.layout.fileSize} bytes`);
  t.ok(Math.abs(mmproj.layout.fileSize - 624.4e6) < 1e6, `mmproj ${mmproj.layout.fileSize} bytes, like the real 624 MB file`);
  t.same(tensorTable(mmproj).get('mm.0.weight')![0], [1024, 4096]);
  t.same(tensorTable(mmproj).get('mm.2.weight')![0], [4096, 4096]);
});

t.test('SentencePiece vocabulary', async (t) => {
  const v = buildSpmVocab(32000);
  t.equal(v.tokens.length, 32000);
  t.equal(new Set(v.tokens).size, 32000, 'unique (llama.cpp asserts this)');
  t.same(v.tokens.slice(0, 3), ['<unk>', '<s>', '</s>']);
  t.same([...v.tokenTypes.slice(0, 3)], [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]);
  t.equal(v.tokens[3], '<0x00>');
  t.equal(v.tokens[13], '<0x0A>', 'the newline byte where LLaMA has it');
  t.equal(v.tokens[258], '<0xFF>');
  t.ok([...v.tokenTypes.slice(3, 259)].every((x) => x === TokenType.BYTE));
  t.ok([...v.tokenTypes.slice(259)].every((x) => x === TokenType.NORMAL));
  t.ok(v.scores![259]! > v.scores![1000]!, 'earlier pieces merge first');
  const index = new Set(v.tokens);
  for (const p of ['▁USER', '▁ASSISTANT', '▁Question', '▁Answer', ':', '?', '▁the', '▁a', '▁is', '▁what', 'What', '▁', 'a', 'Z', '7']) {
    t.ok(index.has(p), `has ${p}`);
  }
  // Prefix closure: the SPM merge of a word can always proceed from its first piece.
  const broken = v.tokens.filter((tok, i) => i > 258 && tok.length > 2 && tok.startsWith('▁') && !index.has([...tok].slice(0, -1).join('')));
  t.same(broken, [], 'every ▁word has its prefixes');

  const tiny = buildSpmVocab(LLAVA_SHAPES.tiny.text.vocabSize);
  const tinyIndex = new Set(tiny.tokens);
  for (const p of ['▁USER', '▁ASSISTANT', '▁Question', '▁Answer', ':', '?', '▁the', '▁a', '▁is', '▁what']) {
    t.ok(tinyIndex.has(p), `tiny has ${p}`);
  }
  t.same(buildSpmVocab(32000).tokens, v.tokens, 'deterministic');
});

t.test('WordPiece vocabulary (llama.cpp phantom-space layout)', async (t) => {
  const v = buildWordPieceVocab(0);
  t.same(v.tokens.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  t.ok([...v.tokenTypes.slice(0, 5)].every((x) => x === TokenType.CONTROL));
  const index = new Set(v.tokens);
  t.equal(index.size, v.tokens.length, 'unique');
  // "What color is the car in the picture?" is all known words
  for (const w of ['what', 'color', 'is', 'the', 'car', 'in', 'picture', 'how', 'many', 'people', 'holding', 'red']) {
    t.ok(index.has(`▁${w}`), `has ▁${w}`);
  }
  t.ok(index.has('▁?') && index.has('s') && index.has('ing'), 'punctuation and continuation pieces');
  t.notOk(v.tokens.some((x) => /[A-Z]/.test(x) && !x.startsWith('[')), 'uncased');
  t.equal(buildWordPieceVocab(30522).tokens.length, 30522);
});

t.test('BERT embedders as llama.cpp loads them', async (t) => {
  for (const [name, s] of Object.entries(BERT_SHAPES)) {
    const plan = planBertEmbedder(name as keyof typeof BERT_SHAPES);
    const n = s.nEmbd;
    const nVocab = (keyOf(plan, 'tokenizer.ggml.tokens')!.value as ArrayLike<string>).length;
    if (s.vocabSize) t.equal(nVocab, s.vocabSize);
    const want = new Map<string, [number[], number]>([
      ['token_embd.weight', [[n, nVocab], F16]],
      ['token_types.weight', [[n, 2], F32]],
      ['position_embd.weight', [[n, s.nCtxTrain], F16]],
      ['token_embd_norm.weight', [[n], F32]],
      ['token_embd_norm.bias', [[n], F32]],
    ]);
    for (let i = 0; i < s.nLayer; i++) {
      for (const w of ['attn_q', 'attn_k', 'attn_v', 'attn_output']) {
        want.set(`blk.${i}.${w}.weight`, [[n, n], F16]);
        want.set(`blk.${i}.${w}.bias`, [[n], F32]);
      }
      for (const ln of ['attn_output_norm', 'layer_output_norm']) {
        want.set(`blk.${i}.${ln}.weight`, [[n], F32]);
        want.set(`blk.${i}.${ln}.bias`, [[n], F32]);
      }
      want.set(`blk.${i}.ffn_up.weight`, [[n, s.nFf], F16]);
      want.set(`blk.${i}.ffn_up.bias`, [[s.nFf], F32]);
      want.set(`blk.${i}.ffn_down.weight`, [[s.nFf, n], F16]);
      want.set(`blk.${i}.ffn_down.bias`, [[n], F32]);
    }
    t.same(tensorTable(plan), want, `${name}: tensors`);
    t.equal(keyOf(plan, 'general.architecture')?.value, 'bert');
    t.equal(keyOf(plan, 'tokenizer.ggml.model')?.value, 'bert');
    t.equal(keyOf(plan, 'tokenizer.ggml.token_type_count')?.value, 2, 'llama.cpp refuses BERT without a token type count');
    t.equal(keyOf(plan, 'bert.pooling_type')?.value, 1, 'mean pooling');
    t.equal(keyOf(plan, 'bert.attention.causal')?.value, false);
    t.equal(keyOf(plan, 'bert.attention.layer_norm_epsilon')?.type, GgufValueType.FLOAT32);
    t.equal(keyOf(plan, 'tokenizer.ggml.seperator_token_id')?.value, 3);
    t.equal(keyOf(plan, 'tokenizer.ggml.bos_token_id')?.value, 2, '[CLS] is the BOS, as the converter writes it');
  }
});

t.test('LoRA adapters with the shapes llama-adapter.cpp validates', async (t) => {
  const s = LLAVA_SHAPES.tiny;
  const plan = planLlavaLora('tiny', { rank: 4, alpha: 8, targets: ['attn_q', 'attn_k', 'ffn_down'] });
  t.equal(keyOf(plan, 'general.type')?.value, 'adapter');
  t.equal(keyOf(plan, 'adapter.type')?.value, 'lora');
  t.same(keyOf(plan, 'adapter.lora.alpha'), { key: 'adapter.lora.alpha', type: GgufValueType.FLOAT32, value: 8 });
  t.equal(keyOf(plan, 'general.architecture')?.value, 'llama');
  const tensors = tensorTable(plan);
  t.equal(tensors.size, s.text.nLayer * 3 * 2);
  const E = s.text.nEmbd;
  // model weight [in, out]: lora_a [in, r], lora_b [r, out]
  t.same(tensors.get('blk.0.attn_q.weight.lora_a'), [[E, 4], F32]);
  t.same(tensors.get('blk.0.attn_q.weight.lora_b'), [[4, E], F32]);
  t.same(tensors.get('blk.1.ffn_down.weight.lora_a'), [[s.text.nFf, 4], F32]);
  t.same(tensors.get('blk.1.ffn_down.weight.lora_b'), [[4, E], F32]);
});

t.test('writeFixtures writes complete, deterministic files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'srf-gguf-fixtures-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const set = await writeFixtures(join(dir, 'a'), { llava: 'tiny', lora: true, bert: 'tiny', seed: 5 });
  t.equal(set.imageTokens, 16);
  t.equal(set.llava, LLAVA_SHAPES.tiny);
  for (const [path, plan] of [
    [set.model, planLlavaTextModel('tiny', { seed: 5 })],
    [set.mmproj, planLlavaMmproj('tiny', { seed: 5 })],
    [set.lora!, planLlavaLora('tiny', { seed: 5 })],
    [set.embedder!, planBertEmbedder('tiny', { seed: 5 })],
  ] as const) {
    const info = await readGgufInfo(path);
    t.equal(info.fileSize, plan.layout.fileSize, `${path}: size as planned`);
    t.same(info.tensors, plan.layout.tensors, `${path}: tensors as planned`);
  }
  const info = await readGgufInfo(set.model);
  t.equal(metaNumber(info, 'llama.embedding_length'), 64);
  t.equal(metaString(info, 'general.architecture'), 'llama');

  // Same seed elsewhere: byte-identical. Another seed: other weights, same layout.
  const again = await writeFixtures(join(dir, 'b'), { llava: 'tiny', seed: 5 });
  t.ok((await readFile(set.model)).equals(await readFile(again.model)), 'text model reproducible');
  t.ok((await readFile(set.mmproj)).equals(await readFile(again.mmproj)), 'mmproj reproducible');
  const other = await writeFixtures(join(dir, 'b'), { llava: 'tiny', seed: 6 });
  t.notOk((await readFile(set.mmproj)).equals(await readFile(other.mmproj)), 'another seed, other weights');
  t.same((await readGgufInfo(other.mmproj)).tensors, (await readGgufInfo(set.mmproj)).tensors);

  // Existing complete fixtures are reused, not rewritten.
  const before = (await stat(set.model)).mtimeMs;
  await new Promise((r) => setTimeout(r, 20));
  await writeFixtures(join(dir, 'a'), { llava: 'tiny', lora: true, bert: 'tiny', seed: 5 });
  t.equal((await stat(set.model)).mtimeMs, before, 'reused');
  await writeFixtures(join(dir, 'a'), { llava: 'tiny', seed: 5, reuse: false });
  t.not((await stat(set.model)).mtimeMs, before, 'rewritten when asked');
});

t.test('bad shapes and presets are refused up front', async (t) => {
  t.throws(() => planLlavaTextModel('huge' as never), { code: 'INVALID_ARGUMENT' });
  const tiny = LLAVA_SHAPES.tiny;
  t.throws(() => planLlavaMmproj({ ...tiny, vision: { ...tiny.vision, imageSize: 50 } }), { code: 'INVALID_ARGUMENT', message: /multiple of patchSize/ });
  t.throws(() => planLlavaTextModel({ ...tiny, text: { ...tiny.text, nHead: 3 } }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => planLlavaLora('tiny', { targets: ['attn_qkv' as never] }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => planLlavaTextModel('tiny', { seed: -1 }), { code: 'INVALID_ARGUMENT' });
});
