// The committed world embedder (models/world, trained by training/world/train_bert.py) on the engine:
// the same sentence vectors as PyTorch, and similarities that follow meaning on the world's texts.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { Embedder } from '../lib/index.js';
import { packageRoot } from '../lib/engine/native.js';
import { bertScoreF1, cosine } from '../lib/srf/metrics.js';
import { worldModelPaths } from '../lib/world/model-files.js';

const files = worldModelPaths();

t.test('pooled vectors equal PyTorch\'s (cosine >= 0.999)', async (t) => {
  const ref = JSON.parse(await readFile(path.join(packageRoot(), 'test', 'data', 'world-parity', 'embedder-reference.json'), 'utf8')) as {
    texts: string[];
    vectors: number[][];
  };
  await using embedder = await Embedder.open({ model: files.embedder, threads: 1 });
  const got = await embedder.embed(ref.texts);
  let worst = 1;
  got.forEach((e, i) => {
    worst = Math.min(worst, cosine(e.pooled, Float32Array.from(ref.vectors[i]!)));
  });
  t.ok(worst >= 0.999, `lowest cosine to the PyTorch vector over ${ref.texts.length} texts: ${worst.toFixed(5)}`);
});

t.test('same meaning close, different meaning far', async (t) => {
  await using embedder = await Embedder.open({ model: files.embedder, threads: 1 });
  const sim = async (a: string, b: string) => {
    const [x, y] = await embedder.embed([a, b]);
    return { cos: cosine(x!.pooled, y!.pooled), f1: bertScoreF1(x!.tokens, y!.tokens) };
  };
  const pairs: Array<[string, string, string, string]> = [
    // [a, same meaning as a, different meaning, what differs]
    ['red', 'Red.', 'blue', 'colour'],
    ['2', 'two', '3', 'count'],
    ['top left', 'at the top left', 'bottom right', 'position'],
    ['What color is the circle?', 'What is the color of the circle?', 'How many circles are there?', 'question'],
    ['What color is the circle?', 'Which color is the circle?', 'What color is the square?', 'object of the question'],
    ['A red circle and a blue square on a white background.', 'A blue square and a red circle on a white background.', 'A red circle and a blue square on a black background.', 'background'],
    ['A large red circle.', 'The large red circle.', 'A small green star.', 'object'],
  ];
  for (const [a, same, other, what] of pairs) {
    const close = await sim(a, same);
    const far = await sim(a, other);
    t.ok(close.cos > far.cos + 0.1, `${what}: cos(${a} | ${same}) ${close.cos.toFixed(3)} > cos(${a} | ${other}) ${far.cos.toFixed(3)} + 0.1`);
    t.ok(close.f1 > far.f1, `${what}: BERTScore ${close.f1.toFixed(3)} > ${far.f1.toFixed(3)}`);
  }
  const unrelated = await sim('yes', 'Please provide the bounding box coordinate of the region this sentence describes: the red circle.');
  t.ok(unrelated.cos < 0.5, `unrelated texts are far (${unrelated.cos.toFixed(3)}), not 0.96 as with random weights`);
});
