// The checks run before any native code sees a model file: each mistake a user can make gives
// its own SrfError code, names the file, says what to do, and leaves the process running.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';

import { isSrfError, type SrfErrorCode } from '../lib/errors.js';
import {
  LLAVA_SHAPES,
  checkEmbedderFile,
  checkLoraFile,
  checkMmprojFile,
  checkTextModelFile,
  checkVisionModelFiles,
  kv,
  metaArrayLength,
  planLlavaMmproj,
  readGgufInfo,
  writeFixtures,
  writeGguf,
  writeLlavaLora,
  writeLlavaPair,
  type LlavaShape,
} from '../fixtures/gguf/index.js';

const dir = await mkdtemp(join(tmpdir(), 'srf-gguf-check-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const world = await writeFixtures(join(dir, 'models'), { llava: 'tiny', lora: true, bert: 'tiny', seed: 2 });
/** The tiny shape with a wider text model: its mmproj and LoRA do not fit the tiny model. */
const wide: LlavaShape = { ...LLAVA_SHAPES.tiny, name: 'tiny-wide', text: { ...LLAVA_SHAPES.tiny.text, nEmbd: 96, nHead: 4, nHeadKv: 4 } };
const wider = await writeLlavaPair(join(dir, 'wide'), wide, { seed: 2 });
const deeper: LlavaShape = { ...LLAVA_SHAPES.tiny, name: 'tiny-deep', text: { ...LLAVA_SHAPES.tiny.text, nLayer: 3 } };

async function expectError(t: Test, promise: Promise<unknown>, code: SrfErrorCode, file: string, pattern?: RegExp) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isSrfError(err)) {
    t.fail(`expected an SrfError ${code}, got ${String(err)}`);
    return;
  }
  t.equal(err.code, code, err.message);
  t.equal(err.file, file, 'err.file names the file');
  t.ok(err.message.includes(file), 'the message names the file');
  if (pattern) t.match(err.message, pattern);
}

t.test('a valid pair: what the engine needs to know', async (t) => {
  const info = await checkVisionModelFiles(world.model, world.mmproj);
  const s = LLAVA_SHAPES.tiny;
  t.match(info.text, { path: world.model, arch: 'llama', nEmbd: s.text.nEmbd, nLayer: s.text.nLayer, nCtxTrain: 4096, vocabSize: s.text.vocabSize });
  t.match(info.vision, {
    path: world.mmproj,
    imageSize: 56,
    patchSize: 14,
    imageTokens: 16,
    projectorType: 'mlp',
    projectorWidth: s.text.nEmbd,
  });
  t.same(info.vision.imageMean, [...s.vision.imageMean].map(Math.fround));
  t.same(info.vision.imageStd, [...s.vision.imageStd].map(Math.fround));
  t.equal(info.text.tensorDims.get('token_embd.weight')?.join('x'), `${s.text.nEmbd}x${s.text.vocabSize}`);
});

t.test('files that are not there or not models', async (t) => {
  const missing = join(dir, 'no-such-model.gguf');
  await expectError(t, checkVisionModelFiles(missing, world.mmproj), 'FILE_NOT_FOUND', missing);
  await expectError(t, checkVisionModelFiles(world.model, missing), 'FILE_NOT_FOUND', missing);

  const text = join(dir, 'model.txt');
  await writeFile(text, 'not a model, just some text\n');
  await expectError(t, checkVisionModelFiles(text, world.mmproj), 'NOT_GGUF', text, /text file/);

  const empty = join(dir, 'empty.gguf');
  await writeFile(empty, '');
  await expectError(t, checkVisionModelFiles(world.model, empty), 'NOT_GGUF', empty, /empty/);
  await expectError(t, checkEmbedderFile(empty), 'NOT_GGUF', empty);

  await expectError(t, checkTextModelFile(dir), 'FILE_UNREADABLE', dir, /directory/);
});

t.test('truncated downloads', async (t) => {
  const bytes = await readFile(world.model);
  const cutData = join(dir, 'cut-model.gguf');
  await writeFile(cutData, bytes.subarray(0, bytes.length - 5000));
  await expectError(t, checkVisionModelFiles(cutData, world.mmproj), 'GGUF_TRUNCATED', cutData, /bytes missing/);

  const cutHeader = join(dir, 'cut-mmproj.gguf');
  await writeFile(cutHeader, (await readFile(world.mmproj)).subarray(0, 300));
  await expectError(t, checkVisionModelFiles(world.model, cutHeader), 'GGUF_TRUNCATED', cutHeader, /GGUF header/);
});

t.test('model and mmproj swapped, or the wrong kind of file', async (t) => {
  await expectError(t, checkVisionModelFiles(world.mmproj, world.model), 'MODEL_ARCH_UNSUPPORTED', world.mmproj, /swapped.*--mmproj/);
  await expectError(t, checkVisionModelFiles(world.model, world.model), 'MMPROJ_INVALID', world.model, /text model.*--model/);
  await expectError(t, checkVisionModelFiles(world.mmproj, world.mmproj), 'MODEL_ARCH_UNSUPPORTED', world.mmproj, /mmproj \(clip\).*--mmproj/);
  await expectError(t, checkVisionModelFiles(world.embedder!, world.mmproj), 'MODEL_ARCH_UNSUPPORTED', world.embedder!, /embedding model \(bert\)/);
  await expectError(t, checkVisionModelFiles(world.lora!, world.mmproj), 'MODEL_ARCH_UNSUPPORTED', world.lora!, /adapter/);
  await expectError(t, checkVisionModelFiles(world.model, world.lora!), 'MMPROJ_INVALID', world.lora!, /adapter/);
});

t.test('an mmproj made for another text model', async (t) => {
  await expectError(t, checkVisionModelFiles(world.model, wider.mmproj), 'MMPROJ_MISMATCH', wider.mmproj, /96-wide.*64 wide/);
  await expectError(t, checkVisionModelFiles(wider.model, world.mmproj), 'MMPROJ_MISMATCH', world.mmproj, /64-wide.*96 wide/);
});

t.test('mmprojs clip.cpp would refuse or crash on', async (t) => {
  const base = planLlavaMmproj('tiny', { seed: 2 });
  const variant = async (name: string, edit: (m: typeof base.metadata, ts: typeof base.tensors) => [typeof base.metadata, typeof base.tensors]) => {
    const fresh = planLlavaMmproj('tiny', { seed: 2 });
    const [m, ts] = edit(fresh.metadata, fresh.tensors);
    const path = join(dir, `${name}.gguf`);
    await writeGguf(path, m, ts);
    return path;
  };
  const noVision = await variant('no-vision', (m, ts) => [m.map((e) => (e.key === 'clip.has_vision_encoder' ? kv.bool(e.key, false) : e)), ts]);
  await expectError(t, checkMmprojFile(noVision), 'MMPROJ_INVALID', noVision, /no vision encoder/);

  const noProjector = await variant('no-projector', (m, ts) => [m.filter((e) => e.key !== 'clip.projector_type'), ts]);
  await expectError(t, checkMmprojFile(noProjector), 'MMPROJ_INVALID', noProjector, /projector/);

  const noMm2 = await variant('no-mm2', (m, ts) => [m, ts.filter((x) => !x.name.startsWith('mm.2.'))]);
  await expectError(t, checkMmprojFile(noMm2), 'MMPROJ_INVALID', noMm2, /mm\.2\.weight/);

  const noMean = await variant('no-mean', (m, ts) => [m.filter((e) => e.key !== 'clip.vision.image_mean'), ts]);
  await expectError(t, checkMmprojFile(noMean), 'MMPROJ_INVALID', noMean, /image_mean/);

  const fewBlocks = await variant('few-blocks', (m, ts) => [m, ts.filter((x) => !x.name.startsWith('v.blk.1.'))]);
  await expectError(t, checkMmprojFile(fewBlocks), 'MMPROJ_INVALID', fewBlocks, /v\.blk\.1\./);

  const shortPos = await variant('short-pos', (m, ts) => [
    m,
    ts.map((x) => (x.name === 'v.position_embd.weight' ? { ...x, dims: [32, 10] } : x)),
  ]);
  await expectError(t, checkMmprojFile(shortPos), 'MMPROJ_INVALID', shortPos, /v\.position_embd\.weight is 32x10, expected 32x17/);
});

t.test('LoRA adapters', async (t) => {
  const files = await checkVisionModelFiles(world.model, world.mmproj);
  const lora = await checkLoraFile(world.lora!, files);
  t.match(lora, { path: world.lora, arch: 'llama', rank: 8, alpha: 16 });
  t.equal(lora.targets.length, 2 * 7);
  t.same(await checkLoraFile(world.lora!, files.text), lora, 'the text info alone is enough');

  const wideLora = await writeLlavaLora(join(dir, 'wide'), wide, { seed: 2 });
  await expectError(t, checkLoraFile(wideLora, files), 'LORA_INVALID', wideLora, /another model/);
  const deepLora = await writeLlavaLora(join(dir, 'deep'), deeper, { seed: 2, targets: ['attn_q'] });
  await expectError(t, checkLoraFile(deepLora, files), 'LORA_INVALID', deepLora, /only 2 layers/);

  await expectError(t, checkLoraFile(world.model, files), 'LORA_INVALID', world.model, /not a LoRA adapter/);
  await expectError(t, checkLoraFile(world.mmproj, files), 'LORA_INVALID', world.mmproj, /mmproj/);
  const missing = join(dir, 'no-lora.gguf');
  await expectError(t, checkLoraFile(missing, files), 'FILE_NOT_FOUND', missing);

  // Another architecture, and half a pair.
  const info = await readGgufInfo(world.lora!);
  const otherArch = join(dir, 'qwen-lora.gguf');
  await writeGguf(otherArch, [kv.str('general.architecture', 'qwen2'), kv.str('general.type', 'adapter'), kv.str('adapter.type', 'lora')], [
    { name: 'blk.0.attn_q.weight.lora_a', dims: [64, 8], type: 0 },
    { name: 'blk.0.attn_q.weight.lora_b', dims: [8, 64], type: 0 },
  ]);
  await expectError(t, checkLoraFile(otherArch, files), 'LORA_INVALID', otherArch, /"qwen2".*"llama"/);
  const halfPair = join(dir, 'half-lora.gguf');
  await writeGguf(halfPair, [kv.str('general.architecture', 'llama'), kv.str('general.type', 'adapter'), kv.str('adapter.type', 'lora')], [
    { name: 'blk.0.attn_q.weight.lora_a', dims: [64, 8], type: 0 },
  ]);
  await expectError(t, checkLoraFile(halfPair, files), 'LORA_INVALID', halfPair, /lacks its lora_b/);
  t.equal(info.tensors.length, 28);
});

t.test('embedders', async (t) => {
  t.same(await checkEmbedderFile(world.embedder!), {
    path: world.embedder,
    arch: 'bert',
    nEmbd: 64,
    nLayer: 2,
    nCtxTrain: 512,
    vocabSize: metaArrayLength(await readGgufInfo(world.embedder!), 'tokenizer.ggml.tokens'),
    poolingType: 'mean',
  });
  await expectError(t, checkEmbedderFile(world.model), 'MODEL_ARCH_UNSUPPORTED', world.model, /text model \(llama\), not a BERT-family/);
  await expectError(t, checkEmbedderFile(world.mmproj), 'MODEL_ARCH_UNSUPPORTED', world.mmproj, /mmproj/);
  const missing = join(dir, 'no-bert.gguf');
  await expectError(t, checkEmbedderFile(missing), 'FILE_NOT_FOUND', missing);
});

t.test('after all those errors the process is fine and the good files still check', async (t) => {
  const info = await checkVisionModelFiles(world.model, world.mmproj);
  t.equal(info.vision.imageTokens, 16);
});
