// Cancellation (queued and running), close() during work, and calls after close.
import t from 'tap';
import { VisionModel, Embedder, SrfError } from '../lib/index.js';
import { makeWorld } from './helpers/fixtures.js';

const world = await makeWorld(3);
// 16384 cells: per-sequence, each of the 4 streams (2 running + 2 cached prefixes) holds a long request.
const open = (kvLayout: 'unified' | 'per-sequence' = 'unified') =>
  VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, threads: 1, contextSize: 16384, kvLayout });
// Long enough (seconds even on a fast machine) that a "running" request is still running when aborted.
const long = { maxTokens: 3500, ignoreEos: true };

for (const kvLayout of ['unified', 'per-sequence'] as const) {
t.test(`cancel a running and a queued request; others finish (${kvLayout})`, async (t) => {
  await using model = await open(kvLayout);
  // Prepared up front so the four reach the engine in submission order (sharp finishes in any order).
  const images = await Promise.all(world.images.map((image) => model.prepareImage(image)));
  const [ca, cb, cc] = [new AbortController(), new AbortController(), new AbortController()];
  const a = model.generate({ image: images[0]!, prompt: 'a', sampling: long, signal: ca.signal });
  const b = model.generate({ image: images[1]!, prompt: 'b', sampling: long, signal: cb.signal });
  // parallel 2: these two wait in the queue
  const c = model.generate({ image: images[2]!, prompt: 'c', sampling: long, signal: cc.signal });
  const d = model.generate({ image: images[2]!, prompt: 'd', sampling: { maxTokens: 8, ignoreEos: true } });
  const checks = [t.rejects(a, { code: 'ABORTED' }), t.rejects(b, { code: 'ABORTED' }), t.rejects(c, { code: 'ABORTED' })];
  // Wait (bounded) until the loop has admitted a and b; c and d are then queued behind them.
  const admitted = () => model.stats().active === 2 && model.stats().queued === 2;
  for (let i = 0; i < 200 && !admitted(); i++) await new Promise((r) => setTimeout(r, 10));
  t.same([model.stats().active, model.stats().queued], [2, 2]);
  cc.abort(); // queued
  ca.abort(); // running: frees a slot for d
  t.equal((await d).generatedTokens, 8, 'a queued request runs once a cancelled one frees its slot');
  cb.abort();
  await Promise.all(checks);
  const already = new AbortController();
  already.abort();
  await t.rejects(model.generate({ image: world.images[0]!, prompt: 'x', signal: already.signal }), { code: 'ABORTED' });
  const stats = model.stats();
  t.equal(stats.active, 0);
  t.equal(stats.queued, 0);
});

t.test(`close during work rejects what is pending and frees the model (${kvLayout})`, async (t) => {
  const model = await open(kvLayout);
  const work = [0, 1, 2, 0, 1].map((i) => model.generate({ image: world.images[i]!, prompt: `q${i}`, sampling: long }));
  await new Promise((r) => setTimeout(r, 100));
  const closing = model.close();
  const settled = await Promise.allSettled(work);
  await closing;
  for (const s of settled) {
    t.equal(s.status, 'rejected');
    if (s.status === 'rejected') {
      t.type(s.reason, SrfError);
      t.equal(s.reason.code, 'CLOSED');
    }
  }
  t.equal(model.closed, true);
  await t.rejects(model.generate({ image: world.images[0]!, prompt: 'after' }), { code: 'CLOSED' });
  await t.rejects(model.setLoraScales([]), { code: 'CLOSED' });
  await model.close(); // idempotent
});
}

t.test('the embedder closes deterministically too', async (t) => {
  const embedder = await Embedder.open({ model: world.embedder!, threads: 1 });
  const pending = embedder.embed(['one', 'two']).then(
    () => 'finished',
    (e) => e.code,
  );
  await embedder.close();
  t.match(await pending, /^(finished|CLOSED)$/, 'a call already running may finish; a queued one rejects');
  await t.rejects(embedder.embed(['three']), { code: 'CLOSED' });
});

t.test('many open/close cycles do not leak or crash', async (t) => {
  for (let i = 0; i < 5; i++) {
    const model = await open();
    const p = model.generate({ image: world.images[i % 3]!, prompt: 'x', sampling: { maxTokens: 4 } });
    p.catch(() => {}); // handled now: closing may reject it while close() is still being awaited
    if (i % 2) await model.close();
    else {
      await p;
      await model.close();
    }
    await p.catch(() => {});
  }
  t.pass('survived');
});
