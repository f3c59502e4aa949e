// GPU smoke test: runs where a CUDA library loaded and sees a GPU (the GPU runner workflow, or a lent
// GPU machine). Everything is offloaded; the three calls must work. Where a GPU is expected (an
// NVIDIA driver answers, or SRF_REQUIRE_GPU=1 as the GPU workflow sets) and none is usable, it
// fails with the reason: a GPU job must not go green on the CPU.
import t from 'tap';
import { buildInfo, VisionModel, Embedder } from '../lib/index.js';
import { whyNotOnGpu } from '../lib/engine/devices.js';
import { makeWorld } from './helpers/fixtures.js';

const info = buildInfo();
const gpu = info.devices.find((d) => d.type === 'gpu' && d.cudaVerdict !== 'cannot-run');
const expected = process.env.SRF_REQUIRE_GPU === '1' || info.cuda.driver.installed;
if (info.backend !== 'cuda' || !gpu) {
  if (expected) t.fail(`a GPU is expected here (${process.env.SRF_REQUIRE_GPU === '1' ? 'SRF_REQUIRE_GPU=1' : 'an NVIDIA driver is installed'}) but the engine would run on the CPU: ${whyNotOnGpu({}, info)}`);
  else t.pass(`skipped: backend ${info.backend}, no NVIDIA driver and no GPU device here`);
} else {
  t.test(`three calls on ${gpu.description}`, async (t) => {
    const world = await makeWorld(4);
    const free0 = gpu.memoryFree;
    await using model = await VisionModel.open({ model: world.model, mmproj: world.mmproj, gpuLayers: -1, parallel: 8 });
    const qa = await model.imageToQA(world.images, { sampling: { seed: 1 } });
    t.ok(qa.every((r) => r.ok), 'I->QA parses on the GPU');
    const pairs = qa.flatMap((r, i) => (r.ok ? [{ image: world.images[i]!, question: r.question, answer: r.answer }] : []));
    const [q, a] = await Promise.all([model.answerToQuestion(pairs), model.questionToAnswer(pairs)]);
    t.ok(q.every((r) => r.ok) && a.every((r) => r.ok));
    t.equal(model.stats().prefixMisses, world.images.length);
    const embedder = await Embedder.open({ model: world.embedder!, gpuLayers: -1 });
    t.equal((await embedder.embed(['a red car']))[0]!.pooled.length, embedder.dim);
    await embedder.close();
    await model.close();
    const after = buildInfo().devices.find((d) => d.name === gpu.name)!;
    t.ok(after.memoryFree >= free0 - 64 * 1024 * 1024, 'GPU memory is given back on close');
  });
}
