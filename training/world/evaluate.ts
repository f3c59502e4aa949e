/**
 * The world model's own IQ->A accuracy per question family on held-out images, through the engine
 * (the shipped GGUFs, greedy, as the method's IQ->A call decodes): each image gets one question of
 * every image family, graded against the oracle by lib/world/grade.ts.
 *
 *     node dist/training/world/evaluate.js [IMAGES] [MODEL_DIR]
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VisionModel } from '../../lib/model.js';
import { createRandom } from '../../lib/srf/random.js';
import { FAMILIES, FAMILY_NAMES, type FamilyName, type QuestionAnswer } from '../../lib/world/families.js';
import { isRightAnswer } from '../../lib/world/grade.js';
import { WORLD_HELD_OUT_SEED, worldModelPaths } from '../../lib/world/model-files.js';
import { renderScenePng } from '../../lib/world/render.js';
import { generateScene } from '../../lib/world/scene.js';

/** Evaluation images come after the demo's and the parity test's held-out images. */
export const EVAL_FIRST_SEED = WORLD_HELD_OUT_SEED + 1000;

export interface FamilyAccuracy {
  family: FamilyName;
  dataType: string;
  n: number;
  right: number;
  accuracy: number;
  examples: Array<{ question: string; truth: string; answer: string }>;
}

export async function evaluateWorldModel(images: number, files = worldModelPaths()): Promise<FamilyAccuracy[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'world-eval-'));
  const random = createRandom(11);
  const items: Array<{ image: string; qa: QuestionAnswer }> = [];
  for (let i = 0; i < images; i++) {
    const scene = generateScene(EVAL_FIRST_SEED + i);
    const file = path.join(dir, `${scene.seed}.png`);
    await writeFile(file, await renderScenePng(scene));
    for (const name of FAMILY_NAMES) {
      if (!FAMILIES[name].needsImage) continue;
      const qa = FAMILIES[name].ask(scene, random);
      if (qa) items.push({ image: file, qa });
    }
  }
  const model = await VisionModel.open({ model: files.model, mmproj: files.mmproj, parallel: 8, threads: 1 });
  try {
    const replies = await model.questionToAnswer(items.map((it) => ({ image: it.image, question: it.qa.question })), { sampling: { maxTokens: 96 } });
    const table = new Map<FamilyName, FamilyAccuracy>();
    replies.forEach((reply, i) => {
      const { qa } = items[i]!;
      const row = table.get(qa.family) ?? { family: qa.family, dataType: FAMILIES[qa.family].dataType, n: 0, right: 0, accuracy: 0, examples: [] };
      const answer = reply.ok ? reply.text : '';
      row.n++;
      if (isRightAnswer(qa.family, qa.answer, answer)) row.right++;
      else if (row.examples.length < 3) row.examples.push({ question: qa.question, truth: qa.answer, answer });
      table.set(qa.family, row);
    });
    return [...table.values()].map((row) => ({ ...row, accuracy: row.right / row.n }));
  } finally {
    await model.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const images = Number(process.argv[2] ?? 200);
  const started = Date.now();
  const rows = await evaluateWorldModel(images, process.argv[3] ? worldModelPaths(process.argv[3]) : undefined);
  const lines = ['| family | data type | questions | accuracy |', '|---|---|---:|---:|'];
  let n = 0;
  let right = 0;
  for (const r of rows) {
    lines.push(`| ${r.family} | ${r.dataType} | ${r.n} | ${(100 * r.accuracy).toFixed(1)} % |`);
    n += r.n;
    right += r.right;
  }
  lines.push(`| all | | ${n} | ${(100 * right / n).toFixed(1)} % |`);
  console.log(lines.join('\n'));
  console.log(JSON.stringify(rows.map((r) => ({ family: r.family, examples: r.examples })), null, 1));
  console.log(`${images} held-out images (seeds ${EVAL_FIRST_SEED}..${EVAL_FIRST_SEED + images - 1}), ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
