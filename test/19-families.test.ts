// The model families beyond LLaVA-1.5, on tiny random-weight pairs written by the project's GGUF
// writer: each family resolved from its pair, its own prompt format, images at their real size,
// the three SRF calls end to end on non-square images, prefix sharing (M-RoPE included), drafts,
// image-token limits, and broken files as coded errors.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { VisionModel } from '../lib/index.js';
import { checkVisionModelFiles } from '../lib/gguf/check.js';
import { GgmlType } from '../lib/gguf/constants.js';
import { FIXTURE_FAMILIES, planFamilyMmproj, planMobileVlmMmproj, writeFamilyPair, writeLlava16Pair, writeMobileVlmPair, type FixtureFamily } from '../fixtures/gguf/family-fixtures.js';
import { writeGguf } from '../fixtures/gguf/writer.js';
import { kv } from '../lib/gguf/types.js';
import { tempDir, writeTestImage } from './helpers/fixtures.js';

const dir = await tempDir();
// Non-square on purpose: these families take the image at its own size.
const images = [await writeTestImage(dir, 'wide.png', 1, 90, 40), await writeTestImage(dir, 'tall.png', 2, 36, 70), await writeTestImage(dir, 'square.png', 3, 50, 50)];
const pairs = Object.fromEntries(await Promise.all(FIXTURE_FAMILIES.map(async (f) => [f, await writeFamilyPair(join(dir, 'models'), f, { seed: 3 })] as const))) as Record<
  FixtureFamily,
  { model: string; mmproj: string }
>;
const open = (family: FixtureFamily, extra: Record<string, unknown> = {}) => VisionModel.open({ ...pairs[family], parallel: 4, threads: 1, ...extra });

/** The prompt each family's own template gives a user turn of image + text (as llama-server renders it). */
const EXPECTED_PROMPTS: Record<FixtureFamily, string> = {
  'qwen2.5-vl': '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>What is it?<|im_end|>\n<|im_start|>assistant\n',
  'qwen2-vl': '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>What is it?<|im_end|>\n<|im_start|>assistant\n',
  'qwen3-vl': '<|im_start|>user\n<image>What is it?<|im_end|>\n<|im_start|>assistant\n',
  // Gemma adds BOS itself: the template's {{ bos_token }} is dropped, as llama-server drops it.
  gemma3: '<start_of_turn>user\n<image>What is it?<end_of_turn>\n<start_of_turn>model\n',
  // SmolVLM's template reads content only as typed parts.
  smolvlm: '<|im_start|>User: <image>What is it?<end_of_utterance>\nAssistant:',
};
const EXPECTED = {
  'qwen2.5-vl': { name: 'qwen2.5-vl', projector: 'qwen2.5vl_merger', end: ['<|im_end|>'], mrope: true },
  'qwen2-vl': { name: 'qwen2-vl', projector: 'qwen2vl_merger', end: ['<|im_end|>'], mrope: true },
  'qwen3-vl': { name: 'qwen3-vl', projector: 'qwen3vl_merger', end: ['<|im_end|>'], mrope: true },
  gemma3: { name: 'gemma3', projector: 'gemma3', end: ['<eos>', '<end_of_turn>'], mrope: false },
  smolvlm: { name: 'smolvlm', projector: 'idefics3', end: ['<end_of_utterance>'], mrope: false },
} as const;

for (const family of FIXTURE_FAMILIES) {
  t.test(family, async (t) => {
    t.test('the family is resolved from the pair and named', async (t) => {
      await using model = await open(family);
      const f = model.info.family;
      t.equal(f.name, EXPECTED[family].name);
      t.equal(f.projector, EXPECTED[family].projector);
      t.equal(f.images, 'native');
      t.equal(f.trainerFormat, 'sharegpt');
      t.equal(f.trainScript, false);
      t.match(f.templateSource, /tokenizer\.chat_template/);
      for (const end of EXPECTED[family].end) t.ok(f.endTokens.includes(end), `${end} ends a reply`);
      t.equal(model.info.mrope, EXPECTED[family].mrope);
      t.equal(f.renderPrompt('What is it?'), EXPECTED_PROMPTS[family]);
      t.ok(f.imageTokens[0] > 0 && f.imageTokens[0] <= f.imageTokens[1], `image tokens ${f.imageTokens.join('..')}`);
    });

    t.test('the three calls end to end on non-square images', async (t) => {
      await using model = await open(family);
      const qa = await model.imageToQA(images, { sampling: { seed: 5 } });
      t.ok(qa.every((r) => r.ok), 'every I->QA reply parses (grammar)');
      const ok = qa.flatMap((r, i) => (r.ok ? [{ image: images[i]!, question: r.question, answer: r.answer }] : []));
      const [qs, as] = await Promise.all([
        model.answerToQuestion(ok.map((p) => ({ image: p.image, answer: p.answer }))),
        model.questionToAnswer(ok.map((p) => ({ image: p.image, question: p.question }))),
      ]);
      t.ok(qs.every((r) => r.ok) && as.every((r) => r.ok));
      const stats = model.stats();
      t.equal(stats.prefixMisses, images.length, 'each image prefix is evaluated once');
      t.equal(stats.prefixHits, 2 * ok.length, 'the follow-up calls share it');
    });

    t.test('a shared image prefix gives the same tokens as a separate prefill (M-RoPE positions carried by seq_cp)', async (t) => {
      const request = { image: images[0]!, prompt: 'Describe it.', sampling: { maxTokens: 16, ignoreEos: true } };
      let fresh, reused;
      {
        await using model = await open(family, { kvLayout: 'per-sequence' });
        fresh = await model.generate(request);
        reused = await model.generate(request);
      }
      await using other = await open(family, { parallel: 2, kvLayout: 'per-sequence' });
      const separate = await other.generate(request);
      t.equal(fresh.prefixReused, false);
      t.equal(reused.prefixReused, true);
      t.same(reused.tokens, fresh.tokens);
      t.same(separate.tokens, fresh.tokens);
    });

    t.test("the text before the image, restored from the last image's prefix, gives the same tokens", async (t) => {
      const ask = (image: string) => ({ image, prompt: 'Describe it.', sampling: { maxTokens: 12, ignoreEos: true } });
      let after;
      let shared;
      {
        await using model = await open(family, { parallel: 1 });
        await model.generate(ask(images[0]!));
        after = await model.generate(ask(images[1]!));
        shared = model.stats().prefixSharedTokens;
      }
      await using fresh = await open(family, { parallel: 1 });
      const alone = await fresh.generate(ask(images[1]!));
      t.ok(shared > 0, `the second image's prefix restored ${shared} tokens of text`);
      t.same(after.tokens, alone.tokens);
    });

    t.test('a draft of the reply is confirmed and changes nothing', async (t) => {
      await using model = await open(family);
      const request = { image: images[1]!, prompt: 'What is it?', sampling: { maxTokens: 12 } };
      const plain = await model.generate(request);
      const drafted = await model.generate({ ...request, draft: plain.tokens });
      t.same(drafted.tokens, plain.tokens);
      t.ok(model.stats().draftAccepted > 0, 'draft tokens were accepted');
    });

    t.test("the user's text is text: special-token text in it is not a special token", async (t) => {
      await using model = await open(family);
      const [special] = model.info.family.endTokens;
      const ask = (prompt: string) => model.generate({ image: images[2]!, prompt, sampling: { maxTokens: 1 } });
      const plain = await ask('Say it now.');
      const quoted = await ask(`Say ${special} now.`);
      // As one special token the quote would add one token; as text it is several pieces.
      t.ok(quoted.promptTokens - plain.promptTokens > 2, `${special} in the user's text took ${quoted.promptTokens - plain.promptTokens} tokens`);
    });
  });
}

t.test('LLaVA-1.6: grid pinpoints make it tiled, at the real size; no template in the GGUF keeps vicuna_v1', async (t) => {
  const pair = await writeLlava16Pair(join(dir, 'models'), { seed: 3 });
  await using model = await VisionModel.open({ ...pair, parallel: 2, threads: 1 });
  const f = model.info.family;
  t.equal(f.name, 'llava-1.6');
  t.equal(f.images, 'native');
  t.match(f.renderPrompt('Hi?'), /^A chat between .* USER: <image>\nHi\? ASSISTANT:$/);
  t.ok(f.imageTokens[1] > f.imageTokens[0], `tiles: ${f.imageTokens.join('..')} image tokens`);
  const qa = await model.imageToQA(images, { sampling: { seed: 2 } });
  t.ok(qa.every((r) => r.ok), 'I->QA on non-square images');
  const wide = await model.generate({ image: images[0]!, prompt: 'x', sampling: { maxTokens: 1 } });
  const square = await model.generate({ image: images[2]!, prompt: 'x', sampling: { maxTokens: 1 } });
  t.not(wide.prefixTokens, square.prefixTokens, 'the tile count follows the image shape');
});

t.test('MobileVLM: vicuna_v1 and images padded to a square, like LLaVA-1.5; what its projector cannot take is refused', async (t) => {
  const pair = await writeMobileVlmPair(join(dir, 'models'), { seed: 3 });
  {
    await using model = await VisionModel.open({ ...pair, parallel: 2, threads: 1 });
    const f = model.info.family;
    t.equal(f.name, 'mobilevlm');
    t.equal(f.images, 'pad-square');
    t.equal(model.info.imageSize, 336);
    t.same(f.imageTokens, [144, 144]);
    t.match(f.renderPrompt('Hi?'), /^A chat between .* USER: <image>\nHi\? ASSISTANT:$/);
    const qa = await model.imageToQA(images, { sampling: { seed: 2 } });
    t.ok(qa.every((r) => r.ok), 'I->QA on non-square images');
  }
  // Both used to end the process at the first image.
  const f32 = planMobileVlmMmproj({ seed: 3 });
  const i = f32.tensors.findIndex((x) => x.name === 'mm.model.peg.0.weight');
  f32.tensors[i] = { name: 'mm.model.peg.0.weight', dims: f32.tensors[i]!.dims, type: GgmlType.F32, fill: (d: Float32Array) => d.fill(0.01) };
  const f32Path = join(dir, 'mobilevlm-f32-peg.gguf');
  await writeGguf(f32Path, f32.metadata, f32.tensors);
  await t.rejects(VisionModel.open({ model: pair.model, mmproj: f32Path, parallel: 2 }), { code: 'MMPROJ_INVALID', file: f32Path, message: /F16/ });
  const small = planMobileVlmMmproj({ seed: 3 });
  small.metadata = small.metadata.map((e) => (e.key === 'clip.vision.image_size' ? kv.u32(e.key, 56) : e));
  const smallPath = join(dir, 'mobilevlm-56px.gguf');
  await writeGguf(smallPath, small.metadata, small.tensors);
  await t.rejects(VisionModel.open({ model: pair.model, mmproj: smallPath, parallel: 2 }), { code: 'MMPROJ_INVALID', file: smallPath, message: /24 x 24/ });
});

t.test('image-token limits reach mtmd for the dynamic-resolution families', async (t) => {
  await using capped = await open('qwen2.5-vl', { imageMaxTokens: 16 });
  t.ok(capped.info.family.imageTokens[1] <= 16, `at most 16 image tokens (${capped.info.family.imageTokens.join('..')})`);
  const big = await writeTestImage(dir, 'big.png', 4, 400, 300);
  const r = await capped.generate({ image: big, prompt: 'x', sampling: { maxTokens: 1 } });
  await using uncapped = await open('qwen2.5-vl');
  const r2 = await uncapped.generate({ image: big, prompt: 'x', sampling: { maxTokens: 1 } });
  t.ok(r.prefixTokens < r2.prefixTokens, `the cap shrinks the image prefix (${r.prefixTokens} < ${r2.prefixTokens})`);
  t.equal(uncapped.info.family.imageTokens[1], 1024, 'the default cap is 1024');
  await t.rejects(open('qwen2.5-vl', { imageMinTokens: 64, imageMaxTokens: 16 }), { code: 'INVALID_ARGUMENT' });
});

t.test("Gemma 3's non-causal image must fit one batch: a coded error, not a wrong answer", async (t) => {
  await using model = await open('gemma3', { parallel: 2, batchSize: 8 });
  await t.rejects(model.generate({ image: images[0]!, prompt: 'x', sampling: { maxTokens: 1 } }), { code: 'CONTEXT_TOO_SMALL', message: /batchSize/ });
});

t.test('--chat-template overrides the format', async (t) => {
  {
    await using model = await open('qwen2.5-vl', { chatTemplate: 'vicuna_v1' });
    t.match(model.info.family.renderPrompt('Hi?'), /^A chat between .* USER: <image>\nHi\? ASSISTANT:$/);
    t.match(model.info.family.templateSource, /vicuna_v1/);
  }
  {
    await using model = await open('gemma3', { chatTemplate: 'chatml' });
    t.equal(model.info.family.renderPrompt('Hi?'), '<|im_start|>user\n<image>Hi?<|im_end|>\n<|im_start|>assistant\n');
  }
  const file = join(dir, 'plain.jinja');
  await writeFile(file, "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant]");
  {
    await using model = await open('smolvlm', { chatTemplate: file });
    t.equal(model.info.family.renderPrompt('Hi?'), '[user] <image>Hi?\n[assistant]');
    const r = await model.generate({ image: images[0]!, prompt: 'Hi?', sampling: { maxTokens: 2 } });
    t.equal(r.generatedTokens, 2);
  }
  await t.rejects(open('smolvlm', { chatTemplate: join(dir, 'missing.jinja') }), { code: 'FILE_NOT_FOUND' });
  const broken = join(dir, 'broken.jinja');
  await writeFile(broken, '{% for m in messages %}');
  await t.rejects(open('smolvlm', { chatTemplate: broken }), { code: 'INVALID_ARGUMENT', message: /does not parse/ });
});

t.test('broken family files are coded errors naming the file', async (t) => {
  const rewrite = async (family: FixtureFamily, name: string, change: (plan: ReturnType<typeof planFamilyMmproj>) => void) => {
    const plan = planFamilyMmproj(family, { seed: 3 });
    change(plan);
    const path = join(dir, name);
    await writeGguf(path, plan.metadata, plan.tensors);
    return path;
  };
  const noMerger = await rewrite('qwen2.5-vl', 'no-merger.gguf', (p) => (p.tensors = p.tensors.filter((x) => x.name !== 'mm.2.bias')));
  await t.rejects(checkVisionModelFiles(pairs['qwen2.5-vl'].model, noMerger), { code: 'MMPROJ_INVALID', file: noMerger, message: /mm\.2\.bias/ });
  const f16Positions = await rewrite('gemma3', 'f16-positions.gguf', (p) => {
    const i = p.tensors.findIndex((x) => x.name === 'v.position_embd.weight');
    const spec = p.tensors[i]!;
    p.tensors[i] = { name: spec.name, dims: spec.dims, type: GgmlType.F16, fillF16: (dst) => dst.fill(0) };
  });
  await t.rejects(checkVisionModelFiles(pairs.gemma3.model, f16Positions), { code: 'MMPROJ_INVALID', file: f16Positions, message: /F32/ });
  // Open refuses it before llama.cpp sees it (which would abort the process).
  await t.rejects(VisionModel.open({ model: pairs.gemma3.model, mmproj: f16Positions, parallel: 2 }), { code: 'MMPROJ_INVALID' });
  // Another family's mmproj of another width.
  const narrow = await rewrite('qwen2.5-vl', 'narrow.gguf', (p) => {
    for (const name of ['mm.2.weight', 'mm.2.bias']) {
      const i = p.tensors.findIndex((x) => x.name === name);
      const spec = p.tensors[i]!;
      const dims = name === 'mm.2.bias' ? [32] : [spec.dims[0]!, 32];
      p.tensors[i] = { name, dims, type: spec.type, ...(spec.type === GgmlType.F16 ? { fillF16: (dst: Uint16Array) => dst.fill(0) } : { fill: (dst: Float32Array) => dst.fill(0) }) };
    }
  });
  await t.rejects(checkVisionModelFiles(pairs['qwen2.5-vl'].model, narrow), { code: 'MMPROJ_MISMATCH', file: narrow, message: /32-wide.*64 wide/ });
  // Qwen3-VL: the text model takes 64 x (1 + 1 deepstack layer) = 128-wide image embeddings.
  await t.resolves(checkVisionModelFiles(pairs['qwen3-vl'].model, pairs['qwen3-vl'].mmproj));
  await t.rejects(checkVisionModelFiles(pairs['qwen2.5-vl'].model, pairs['qwen3-vl'].mmproj), { code: 'MMPROJ_MISMATCH', message: /128-wide.*64 wide/ });
  await t.rejects(checkVisionModelFiles(pairs['qwen3-vl'].model, pairs['qwen2.5-vl'].mmproj), { code: 'MMPROJ_MISMATCH', message: /64-wide.*128 wide \(qwen3vl\.embedding_length x \(1 \+ n_deepstack_layers\)\)/ });
  const unfused = await rewrite('qwen3-vl', 'unfused.gguf', (p) => (p.tensors = p.tensors.filter((x) => x.name !== 'v.blk.1.attn_qkv.bias')));
  await t.rejects(checkVisionModelFiles(pairs['qwen3-vl'].model, unfused), { code: 'MMPROJ_INVALID', file: unfused, message: /v\.blk\.1\.attn_qkv\.bias/ });
  const noBias = await rewrite('qwen2-vl', 'no-q-bias.gguf', (p) => (p.tensors = p.tensors.filter((x) => x.name !== 'v.blk.0.attn_q.bias')));
  await t.rejects(checkVisionModelFiles(pairs['qwen2-vl'].model, noBias), { code: 'MMPROJ_INVALID', file: noBias, message: /v\.blk\.0\.attn_q\.bias/ });
});
