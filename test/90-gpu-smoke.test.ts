// GPU smoke test: runs only where the addon was built with CUDA and a GPU is visible (the GPU
// runner workflow, or a lent GPU machine). Everything is offloaded; the three calls must work.
import t from 'tap';
import { buildInfo, VisionModel, Embedder } from '../lib/index.js';
import { makeWorld } from './helpers/fixtures.js';

const info = buildInfo();
const gpu = info.devices.find((d) => d.type === 'gpu');
if (info.backend !== 'cuda' || !gpu) {
  t.pass(`skipped: backend ${info.backend}, no GPU device (CPU build or no GPU here)`);
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
