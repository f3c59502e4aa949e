// The engine's recovery paths and its smaller promises: a step or an admission that throws, a
// KV cache with no slot left, grammar + ignoreEos, a mutated PreparedImage, a prefix cache kept
// when evicting it would not make room, the embedder's load() called twice.
import t from 'tap';
import { VisionModel } from '../lib/index.js';
import { native } from '../lib/engine/native.js';
import { makeWorld } from './helpers/fixtures.js';
import { runStressCase } from './helpers/stress.js';

const world = await makeWorld(4);

// In child processes: without the fix a throw on the batching thread is std::terminate.
for (const [name, failpoints] of [
  ['step-throws', 'step-throw@5'],
  ['admit-throws', 'admit-throw@2'],
  ['kv-full', 'decode-full@4'],
] as const) {
  t.test(`${name} (SRF_FAILPOINTS=${failpoints})`, async (t) => {
    const r = await runStressCase(name, world, { SRF_FAILPOINTS: failpoints });
    t.equal(r.signal, null, 'not killed by a signal');
    t.equal(r.code, 0, r.stderr.slice(-3000));
  });
}

t.test('grammar + ignoreEos finishes when the grammar is complete', async (t) => {
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, threads: 1 });
  const r = await model.generate({ image: world.images[0]!, prompt: 'answer', sampling: { grammar: 'root ::= "yes" | "no"', ignoreEos: true, maxTokens: 60 } });
  t.match(r.text, /^(yes|no)$/);
  t.equal(r.finishReason, 'grammar');
  t.ok(r.generatedTokens < 60, `stopped after ${r.generatedTokens} tokens, not at maxTokens`);
});

t.test('a PreparedImage whose pixels changed does not reuse the old prefix', async (t) => {
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, threads: 1 });
  const image = await model.prepareImage(world.images[0]!);
  const ask = () => model.generate({ image, prompt: 'x', sampling: { maxTokens: 2 } });
  t.equal((await ask()).prefixReused, false);
  t.equal((await ask()).prefixReused, true, 'same pixels: the prefix is reused');
  image.rgb.fill(17);
  t.equal((await ask()).prefixReused, false, 'changed pixels: evaluated again');
});

t.test('admission keeps cached prefixes when evicting them could not make room', async (t) => {
  // The numbers come from the model: prefix P and prompt s tokens; budget = contextSize - 16.
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, prefixCache: 3, threads: 1, contextSize: 1024, kvLayout: 'unified' });
  const images = await Promise.all(world.images.slice(0, 3).map((i) => model.prepareImage(i)));
  const probe = await model.generate({ image: images[1]!, prompt: 'q', sampling: { maxTokens: 1 } }); // caches image 1's prefix
  await model.generate({ image: images[2]!, prompt: 'q', sampling: { maxTokens: 1 } }); // and image 2's
  const P = probe.prefixTokens;
  const s = probe.promptTokens;
  const budget = model.info.contextSize - 16;
  // A (image 0) fills what is left beside the three prefixes. B (image 1) fits once A is done, but
  // not beside A even with image 2's idle prefix evicted: B must wait without evicting it.
  const a = model.generate({ image: images[0]!, prompt: 'q', sampling: { maxTokens: budget - 3 * P - s, ignoreEos: true } });
  for (let i = 0; i < 500 && model.stats().active === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const b = await model.generate({ image: images[1]!, prompt: 'q', sampling: { maxTokens: P + 10, ignoreEos: true } });
  await a;
  t.equal(b.prefixReused, true);
  const c = await model.generate({ image: images[2]!, prompt: 'q', sampling: { maxTokens: 1 } });
  t.equal(c.prefixReused, true, "image 2's prefix survived while B waited for room");
});

t.test("the embedder's load() cannot run twice", async (t) => {
  const embedder = new (native().Embedder)();
  const first = embedder.load({ model: world.embedder! });
  t.throws(() => embedder.load({ model: world.embedder! }), { code: 'INVALID_ARGUMENT' });
  await first;
  await embedder.close();
});

t.test('close() interrupts a long prefix evaluation', async (t) => {
  // The addon directly: lib/ builds the prefix from the fixed LLaVA system text; a long one makes
  // an evaluation that takes seconds on the tiny model (thousands of tokens, batches of 8).
  const settled: string[] = [];
  const model = new (native().VisionModel)((_id, error) => settled.push(error ? error.code : 'ok'));
  await model.load({ model: world.model, mmproj: world.mmproj, threads: 1, parallel: 1, prefixCache: 1, batchSize: 8, contextSize: 12288 });
  const words = Array.from({ length: 2500 }, (_, i) => ['red', 'blue', 'green', 'cat', 'dog'][i % 5]).join(' ');
  const rgb = new Uint8Array(56 * 56 * 3).fill(90);
  model.submit({ beforeImage: words, afterImage: 'q', prefixKey: 'long', rgb, size: 56, temperature: 0, topP: 1, topK: 0, seed: 0, maxTokens: 2, ignoreEos: true, grammar: '' });
  await new Promise((r) => setTimeout(r, 300)); // the loop is evaluating the prefix now
  const start = Date.now();
  await model.close();
  t.comment(`close() took ${Date.now() - start} ms during the prefix evaluation`);
  // The request's CLOSED arrives through the thread-safe function, which may run after close()'s
  // own promise on a loaded machine: give it a moment.
  for (let i = 0; i < 100 && settled.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.same(settled, ['CLOSED']);
  t.equal(model.stats().prefixTokens, 0, 'the prefix evaluation was stopped, not finished');
});
