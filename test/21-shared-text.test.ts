// The text before the image is the same for every image: the engine restores its KV cells from the
// last image's prefix instead of evaluating it again (native/shared_text.h). The cells are a copy,
// so every reply must be token-identical to the one with the text evaluated (SRF_SHARED_TEXT=0),
// on both KV layouts, and the counters must say what was restored.
import t from 'tap';
import { VisionModel } from '../lib/index.js';
import type { GenerateResult, OpenVisionModelOptions } from '../lib/index.js';
import { makeWorld } from './helpers/fixtures.js';

const world = await makeWorld(4);

async function replies(kvLayout: 'unified' | 'per-sequence', shared: boolean, extra: Partial<OpenVisionModelOptions> = {}) {
  if (!shared) process.env.SRF_SHARED_TEXT = '0'; // read when the engine starts
  try {
    await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, threads: 1, kvLayout, ...extra });
    const results: GenerateResult[] = [];
    // One image after the other, so that every prefix after the first finds the text saved; then
    // two images at once, their prefixes evaluated back to back.
    for (const image of world.images.slice(0, 2)) results.push(await model.generate({ image, prompt: 'Describe it.', sampling: { maxTokens: 24, ignoreEos: true } }));
    results.push(...(await Promise.all(world.images.slice(2).map((image) => model.generate({ image, prompt: 'What is it?', sampling: { maxTokens: 24, ignoreEos: true } })))));
    return { tokens: results.map((r) => r.tokens), prefix: results[0]!.prefixTokens, stats: model.stats() };
  } finally {
    delete process.env.SRF_SHARED_TEXT;
  }
}

for (const kvLayout of ['unified', 'per-sequence'] as const) {
  t.test(`${kvLayout} KV: the restored text gives the same replies as the evaluated one`, async (t) => {
    const evaluated = await replies(kvLayout, false);
    const restored = await replies(kvLayout, true);
    t.same(restored.tokens, evaluated.tokens, 'every reply token-identical');
    t.equal(evaluated.stats.prefixSharedTokens, 0, 'SRF_SHARED_TEXT=0: nothing restored');
    t.equal(evaluated.stats.prefixTokens, 4 * evaluated.prefix, 'SRF_SHARED_TEXT=0: four whole prefixes evaluated');
    const text = restored.stats.prefixSharedTokens / 3;
    t.ok(Number.isInteger(text) && text > 0, `the three prefixes after the first restored the text (${text} tokens each)`);
    t.equal(restored.stats.prefixTokens + restored.stats.prefixSharedTokens, 4 * restored.prefix, 'restored + evaluated = four prefixes');
  });
}

t.test('a LoRA change forgets the saved text (it was computed with other weights)', async (t) => {
  if (!world.lora) {
    t.skip('the fixture world has no LoRA adapter');
    return;
  }
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, threads: 1, loras: [{ path: world.lora, scale: 0 }] });
  await model.generate({ image: world.images[0]!, prompt: 'Hi.', sampling: { maxTokens: 2 } });
  await model.setLoraScales([1]);
  await model.generate({ image: world.images[1]!, prompt: 'Hi.', sampling: { maxTokens: 2 } });
  t.equal(model.stats().prefixSharedTokens, 0, 'the prefix after the change evaluated its text');
});
