// GPU smoke test for the lent machine (no test runner there): the addon must be a CUDA build that
// sees a GPU, and the three Triangular Consistency calls must run on the tiny model fully offloaded.
//   node bench/gpu/smoke.js            (from the package root, after `tsc` and the addon build)
//   node bench/gpu/smoke.js --allow-cpu   (checks everything but the backend, for a CPU machine)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const root = new URL('../../', import.meta.url);
const { VisionModel, buildInfo } = await import(new URL('dist/lib/index.js', root).href);
const { writeFixtures } = await import(new URL('dist/fixtures/gguf/fixtures.js', root).href);

const allowCpu = process.argv.includes('--allow-cpu');
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

const info = buildInfo();
const gpus = info.devices.filter((d) => d.type === 'gpu' || d.type === 'igpu');
console.log(`build: backend=${info.backend} cuda=${info.cudaArchitectures || '-'} llama.cpp ${info.llamaCppVersion}`);
for (const d of info.devices) console.log(`  device ${d.name} (${d.type}): ${d.description}, ${(d.memoryTotal / 2 ** 30).toFixed(1)} GiB`);
if (!allowCpu) {
  check(info.backend === 'cuda', "buildInfo().backend === 'cuda'");
  check(gpus.length > 0, 'a GPU device is listed');
}

const dir = mkdtempSync(join(tmpdir(), 'srf-smoke-'));
let model;
try {
  const fx = await writeFixtures(dir, { llava: 'tiny', seed: 7 });
  const image = join(dir, 'smoke.png');
  await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toFile(image);
  model = await VisionModel.open({ model: fx.model, mmproj: fx.mmproj, gpuLayers: -1, parallel: 4 });
  check(model.info.layers > 0, `model loaded (${model.info.description})`);

  const [qa] = await model.imageToQA([image], { sampling: { maxTokens: 64, seed: 1 } });
  // A random-weight model rarely writes a parsable "Question/Answer" reply; the call must still settle.
  check(qa.ok || qa.error?.code === 'DATA_INVALID', `I->QA settled (${qa.ok ? 'parsed' : qa.error.code})`);
  const [q] = await model.answerToQuestion([{ image, answer: 'a red square' }], { sampling: { maxTokens: 16 } });
  check(q.ok, `IA->Q: ${q.ok ? JSON.stringify(q.text.slice(0, 40)) : q.error.message}`);
  const [a] = await model.questionToAnswer([{ image, question: 'What colour is it?' }], { sampling: { maxTokens: 16 } });
  check(a.ok, `IQ->A: ${a.ok ? JSON.stringify(a.text.slice(0, 40)) : a.error.message}`);
  const r = await model.generate({ image, prompt: 'Describe it.', sampling: { maxTokens: 8, ignoreEos: true } });
  check(r.generatedTokens === 8, `generate with ignoreEos: ${r.generatedTokens} tokens`);
  const stats = model.stats();
  check(stats.prefixHits >= 1, `image prefix reused (${stats.prefixHits} hits, ${stats.prefixMisses} misses)`);
} catch (err) {
  check(false, `unexpected error: ${err?.stack ?? err}`);
} finally {
  await model?.close();
  rmSync(dir, { recursive: true, force: true });
}

console.log(failures.length ? `smoke test FAILED (${failures.length})` : 'smoke test passed');
process.exit(failures.length ? 1 : 0);
