// The BERT-family embedder: shapes, normalisation, batching consistency.
import t from 'tap';
import { Embedder } from '../lib/index.js';
import { makeWorld } from './helpers/fixtures.js';

const world = await makeWorld(0);

t.test('pooled and per-token vectors have the right shapes', async (t) => {
  await using embedder = await Embedder.open({ model: world.embedder!, threads: 1 });
  t.equal(embedder.dim, world.bert!.nEmbd);
  const texts = ['what color is the car', 'red', 'a dog is sitting on the grass next to a tree'];
  const out = await embedder.embed(texts);
  t.equal(out.length, 3);
  for (const e of out) {
    t.equal(e.pooled.length, embedder.dim);
    const norm = Math.hypot(...e.pooled);
    t.ok(Math.abs(norm - 1) < 1e-4, 'pooled vector is unit length');
    for (const tok of e.tokens) t.equal(tok.length, embedder.dim);
  }
  t.ok(out[1]!.tokens.length >= 1);
  t.ok(out[2]!.tokens.length > out[1]!.tokens.length, 'longer text, more token vectors');
  t.same(await embedder.embed([]), []);
});

t.test('a text embeds the same alone and in a batch', async (t) => {
  await using embedder = await Embedder.open({ model: world.embedder!, threads: 1 });
  const [alone] = await embedder.embed(['the quick brown fox']);
  const batch = await embedder.embed(['something else entirely', 'the quick brown fox', 'yes']);
  const a = alone!.pooled;
  const b = batch[1]!.pooled;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  t.ok(dot > 0.999, `cosine ${dot}`);
  t.equal(batch[1]!.tokens.length, alone!.tokens.length);
});

t.test('bad arguments are coded errors', async (t) => {
  await using embedder = await Embedder.open({ model: world.embedder!, threads: 1 });
  await t.rejects(embedder.embed([1 as unknown as string]), { code: 'INVALID_ARGUMENT' });
  await t.rejects(Embedder.open({ model: world.model }), { code: 'MODEL_ARCH_UNSUPPORTED' });
});
