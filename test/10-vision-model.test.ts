// The engine end to end on the tiny generated LLaVA pair: the three calls on several images at
// once, prefix sharing, seeded sampling, LoRA, stats.
import t from 'tap';
import { VisionModel } from '../lib/index.js';
import type { OpenVisionModelOptions } from '../lib/index.js';
import { QA_REPLY_GRAMMAR } from '../lib/srf/prompts.js';
import { makeWorld } from './helpers/fixtures.js';
import { emptyEngineStats } from '../lib/engine/native.js';

const world = await makeWorld(4);
const KV_LAYOUTS = ['unified', 'per-sequence'] as const;

// Every engine path runs on both KV cache layouts.
for (const kvLayout of KV_LAYOUTS) {
t.test(`kvLayout ${kvLayout}`, async (t) => {
  const open = (extra: Partial<OpenVisionModelOptions> = {}) =>
    VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 4, threads: 1, kvLayout, ...extra });

  t.test('loads and reports what it loaded', async (t) => {
    await using model = await open();
    t.equal(model.info.embeddingLength, world.llava.text.nEmbd);
    t.equal(model.info.imageSize, world.llava.vision.imageSize);
    t.equal(model.info.imageTokens, world.imageTokens);
    t.equal(model.info.parallel, 4);
    t.equal(model.info.kvLayout, kvLayout);
    t.ok(model.info.contextSize >= 4 * (world.imageTokens + 64));
  });

  t.test('the three calls on several images at once', async (t) => {
    await using model = await open();
    const qa = await model.imageToQA(world.images, { sampling: { seed: 11 } });
    t.equal(qa.length, world.images.length);
    for (const item of qa) {
      t.ok(item.ok, 'every I->QA reply parses (grammar)');
      if (!item.ok) continue;
      t.ok(item.question.length > 0 && item.answer.length > 0);
      t.match(item.raw, /^Question: /);
    }
    const pairs = qa.flatMap((item, i) => (item.ok ? [{ image: world.images[i]!, ...item }] : []));
    const [qs, as] = await Promise.all([
      model.answerToQuestion(pairs.map((p) => ({ image: p.image, answer: p.answer }))),
      model.questionToAnswer(pairs.map((p) => ({ image: p.image, question: p.question }))),
    ]);
    t.equal(qs.length, pairs.length);
    t.equal(as.length, pairs.length);
    t.ok(qs.every((r) => r.ok) && as.every((r) => r.ok));
    const stats = model.stats();
    t.equal(stats.completed, 3 * pairs.length);
    t.equal(stats.prefixMisses, world.images.length, 'each image prefix is evaluated once');
    t.equal(stats.prefixHits, 2 * pairs.length, 'follow-up calls reuse the prefix');
    t.ok(stats.steps < stats.generatedTokens, 'sequences were decoded together');
    // The engine's counters (native/engine.h EngineCounters, given by vision_model.cpp's stats())
    // and the TS list that sums replicas' (lib/engine/native.ts) are the same fields.
    t.same(Object.keys(stats).sort(), Object.keys(emptyEngineStats()).sort(), 'the native stats are the TS fields, no more, no fewer');
  });

  t.test('a shared prefix gives the same tokens as a separate prefill', async (t) => {
    const request = { image: world.images[1]!, prompt: 'What is in the picture?', sampling: { maxTokens: 24 } };
    let fresh, reused;
    {
      await using model = await open();
      fresh = await model.generate(request);
      reused = await model.generate(request);
    }
    await using other = await open({ parallel: 2, kvLayout: kvLayout === 'unified' ? 'per-sequence' : 'unified' });
    const separate = await other.generate(request);
    t.equal(fresh.prefixReused, false);
    t.equal(reused.prefixReused, true);
    t.equal(reused.text, fresh.text);
    t.equal(separate.text, fresh.text);
    t.equal(fresh.generatedTokens, 24);
    t.equal(fresh.finishReason, 'length');
  });

  t.test('seeded sampling repeats; another seed differs', async (t) => {
    await using model = await open();
    const ask = (seed: number) =>
      model.generate({ image: world.images[0]!, prompt: 'Tell me.', sampling: { temperature: 1, topP: 0.95, seed, maxTokens: 32, ignoreEos: true } });
    const [a, b, c] = await Promise.all([ask(5), ask(5), ask(6)]);
    t.equal(a.text, b.text);
    t.not(a.text, c.text);
    t.equal(a.generatedTokens, 32, 'ignoreEos runs to maxTokens');
  });

  t.test('the grammar holds a reply to its form', async (t) => {
    await using model = await open();
    const r = await model.generate({ image: world.images[2]!, prompt: 'Ask and answer.', sampling: { temperature: 0.9, seed: 1, grammar: QA_REPLY_GRAMMAR, maxTokens: 256 } });
    t.match(r.text, /^Question: [^\n]+\n(?:[^\n]*\n)?Answer: [^\n]+(?:\n\n?[^\n]+)*$/, "answer lines (paragraphs) after the label");
    await t.rejects(
      model.generate({ image: world.images[2]!, prompt: 'x', sampling: { grammar: 'root ::= ((' } }),
      { code: 'GRAMMAR_INVALID' },
    );
  });

  t.test('a LoRA changes the output and removing it restores it', async (t) => {
    const request = { image: world.images[3]!, prompt: 'Describe the image.', sampling: { maxTokens: 24, ignoreEos: true } };
    let base;
    {
      await using model = await open();
      base = await model.generate(request);
    }
    await using adapted = await open({ loras: [{ path: world.lora!, scale: 1 }] });
    const withLora = await adapted.generate(request);
    t.not(withLora.text, base.text, 'the adapter changes greedy output');
    await adapted.setLoraScales([0]);
    const removed = await adapted.generate(request);
    t.equal(removed.prefixReused, false, 'cached prefixes are dropped when the weights change');
    t.equal(removed.text, base.text);
    await adapted.setLoraScales([1]);
    t.equal((await adapted.generate(request)).text, withLora.text);
    await t.rejects(adapted.setLoraScales([1, 2]), { code: 'INVALID_ARGUMENT' });
  });
});
}

t.test('both layouts give the same greedy replies under concurrency', async (t) => {
  const requests = [0, 1, 2, 3, 0, 1].map((i, k) => ({ image: world.images[i]!, prompt: `Question ${k}?`, sampling: { maxTokens: 20 + k, ignoreEos: true } }));
  const texts: Record<string, string[]> = {};
  for (const kvLayout of KV_LAYOUTS) {
    // Same attention kernel on both sides (the defaults differ by layout), so only the layout varies.
    await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 3, prefixCache: 2, threads: 1, kvLayout, flashAttention: true });
    texts[kvLayout] = (await Promise.all(requests.map((r) => model.generate(r)))).map((r) => r.text);
  }
  t.same(texts['per-sequence'], texts['unified']);
  t.ok(new Set(texts['unified']).size > 1, 'the requests differ, so the comparison means something');
});

t.test('greedy (the argmax fast path) picks what the sampler chain picks with top-k 1', async (t) => {
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 4, threads: 1 });
  for (const ignoreEos of [true, false]) {
    const ask = (sampling: object) =>
      Promise.all([0, 1, 2, 3].map((i) => model.generate({ image: world.images[i]!, prompt: `Say ${i}.`, sampling: { maxTokens: 40, ignoreEos, ...sampling } })));
    const greedy = await ask({});
    const topOne = await ask({ temperature: 1, topK: 1, seed: 9 });
    t.same(greedy.map((r) => [r.text, r.generatedTokens, r.finishReason]), topOne.map((r) => [r.text, r.generatedTokens, r.finishReason]), `ignoreEos ${ignoreEos}`);
  }
});

t.test('per-sequence: a request larger than one sequence\'s share fails with its sizes', async (t) => {
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, prefixCache: 2, threads: 1, contextSize: 1024, kvLayout: 'per-sequence' });
  t.equal(model.info.sequenceCells, 256);
  const error = await model.generate({ image: world.images[0]!, prompt: 'x', sampling: { maxTokens: 400 } }).catch((e) => e);
  t.equal(error.code, 'CONTEXT_TOO_SMALL');
  t.match(error.message, /each sequence holds 256/);
  t.equal((await model.generate({ image: world.images[0]!, prompt: 'x', sampling: { maxTokens: 16, ignoreEos: true } })).generatedTokens, 16, 'a request that fits still runs');
  await t.rejects(VisionModel.open({ model: world.model, mmproj: world.mmproj, kvLayout: 'split' as never }), { code: 'INVALID_ARGUMENT' });
});
