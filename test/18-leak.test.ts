// 2,000 requests through one model: memory and counters end where they should. A slow leak per
// request (a Completion, a sampler, a sequence's KV cells, a pending promise) shows as growth here.
import t from 'tap';
import { VisionModel } from '../lib/index.js';
import { makeWorld } from './helpers/fixtures.js';

const world = await makeWorld(4);
// Generous: a leak of 8 KiB per request would exceed it; the measured growth is in the note.
const RSS_BOUND_MB = 16;

t.test('2,000 requests: RSS and stats() before/after', async (t) => {
  await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 8, threads: 1, contextSize: 4096, kvLayout: 'unified' });
  const images = await Promise.all(world.images.map((i) => model.prepareImage(i)));
  const wave = async (n: number, from: number) => {
    const results = await model.generateBatch(
      Array.from({ length: n }, (_, i) => ({
        image: images[(from + i) % 4]!,
        prompt: `question ${(from + i) % 7}`,
        sampling: { maxTokens: 3, ignoreEos: true, temperature: (from + i) % 2 ? 0.7 : 0, seed: from + i, grammar: (from + i) % 5 ? undefined : 'root ::= [a-z]+' },
      })),
    );
    return results.filter((r) => r.ok).length;
  };
  // Warm up: allocator pools, prefix cache, grammar cache.
  t.equal(await wave(200, 0), 200);
  global.gc?.();
  const before = { rss: process.memoryUsage().rss, stats: model.stats() };
  let ok = 0;
  for (let done = 0; done < 2000; done += 100) ok += await wave(100, 200 + done);
  global.gc?.();
  const after = { rss: process.memoryUsage().rss, stats: model.stats() };
  t.equal(ok, 2000, 'every request completed');
  t.equal(after.stats.completed - before.stats.completed, 2000);
  t.equal(after.stats.failed, before.stats.failed);
  t.equal(after.stats.active + after.stats.queued, 0);
  const growthMb = (after.rss - before.rss) / 2 ** 20;
  t.comment(`RSS ${(before.rss / 2 ** 20).toFixed(1)} -> ${(after.rss / 2 ** 20).toFixed(1)} MiB (${growthMb.toFixed(1)} MiB over 2,000 requests)`);
  // Under AddressSanitizer (scripts/asan-test.sh) freed memory sits in its quarantine: RSS says
  // nothing there, and ASan itself is the check.
  if (process.env.LD_PRELOAD?.includes('libasan')) t.comment('RSS bound not checked under AddressSanitizer');
  else t.ok(growthMb < RSS_BOUND_MB, `RSS grew ${growthMb.toFixed(1)} MiB (bound ${RSS_BOUND_MB})`);
});
