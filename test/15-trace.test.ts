// SRF_TRACE: one JSON line per image prefix and per decode step, matching the engine's counters.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { VisionModel } from '../lib/index.js';
import { makeWorld, tempDir } from './helpers/fixtures.js';

const world = await makeWorld(2);

t.test('the trace holds every prefix and step the stats count', async (t) => {
  const file = path.join(await tempDir(), 'trace.jsonl');
  process.env.SRF_TRACE = file; // read when the engine starts
  let stats;
  try {
    await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, parallel: 2, threads: 1 });
    await Promise.all(world.images.map((image) => model.generate({ image, prompt: 'Hello?', sampling: { maxTokens: 6, ignoreEos: true } })));
    stats = model.stats();
  } finally {
    delete process.env.SRF_TRACE;
  }
  const events = (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
  const prefixes = events.filter((e) => e.ev === 'prefix');
  const steps = events.filter((e) => e.ev === 'step');
  t.equal(prefixes.length, stats.prefixMisses, 'one line per evaluated prefix');
  t.equal(steps.length, stats.steps, 'one line per decode step');
  t.equal(prefixes.reduce((n, e) => n + e.tokens - e.sharedTokens, 0), stats.prefixTokens, 'prefix tokens evaluated');
  t.equal(prefixes.reduce((n, e) => n + e.sharedTokens, 0), stats.prefixSharedTokens, 'prefix tokens restored');
  t.equal(steps.reduce((n, e) => n + e.promptRows, 0), stats.promptTokens);
  t.equal(steps.reduce((n, e) => n + e.rows - e.promptRows, 0), stats.generatedTokens - 2, 'each request\'s last token is sampled, never decoded');
  t.ok(prefixes.every((e) => e.encodeUs > 0 && e.totalUs >= e.encodeUs));
  t.ok(stats.imageEncodeMs > 0 && stats.imageEncodeMs <= stats.prefixEvalMs);
});
