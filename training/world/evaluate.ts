/**
 * The world model's own IQ->A accuracy per question family on held-out images, through the engine
 * (the shipped GGUFs, greedy, as the method's IQ->A call decodes): each image gets one question of
 * every image family, graded against the oracle by lib/world/grade.ts. Beside it, on the same
 * questions and by the same grading, a blind baseline that never sees the image: the most common
 * training answer for each exact question (learned from training scenes), else the family's.
 *
 *     node dist/training/world/evaluate.js [IMAGES] [MODEL_DIR ...]
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VisionModel } from '../../lib/vision-model.js';
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

export interface EvaluationItem {
  seed: number;
  qa: QuestionAnswer;
}

const IMAGE_FAMILIES = FAMILY_NAMES.filter((name) => FAMILIES[name].needsImage);

/** One question of every image family on each of `images` held-out scenes (the same draw every time). */
export function evaluationItems(images: number): EvaluationItem[] {
  const random = createRandom(11);
  const items: EvaluationItem[] = [];
  for (let i = 0; i < images; i++) {
    const scene = generateScene(EVAL_FIRST_SEED + i);
    for (const name of IMAGE_FAMILIES) {
      const qa = FAMILIES[name].ask(scene, random);
      if (qa) items.push({ seed: scene.seed, qa });
    }
  }
  return items;
}

/** The engine's greedy IQ->A replies for the items. */
export async function engineAnswers(items: readonly EvaluationItem[], files = worldModelPaths()): Promise<string[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'world-eval-'));
  const images = new Map<number, string>();
  for (const { seed } of items) {
    if (images.has(seed)) continue;
    const file = path.join(dir, `${seed}.png`);
    await writeFile(file, await renderScenePng(generateScene(seed)));
    images.set(seed, file);
  }
  const model = await VisionModel.open({ model: files.model, mmproj: files.mmproj, parallel: 8, threads: 1 });
  try {
    const replies = await model.questionToAnswer(
      items.map((it) => ({ image: images.get(it.seed)!, question: it.qa.question })),
      { sampling: { maxTokens: 96 } },
    );
    return replies.map((reply) => (reply.ok ? reply.text : ''));
  } finally {
    await model.close();
  }
}

/**
 * A predictor that reads only the question: the answer training scenes gave most often to that exact
 * question (questions drawn as the training data draws them), else the family's most common answer.
 */
export function blindAnswers(items: readonly EvaluationItem[], trainingScenes = 60_000): string[] {
  const byQuestion = new Map<string, Map<string, number>>();
  const byFamily = new Map<FamilyName, Map<string, number>>();
  const count = (map: Map<string, number>, answer: string) => map.set(answer, (map.get(answer) ?? 0) + 1);
  const random = createRandom(12);
  for (let seed = 0; seed < trainingScenes; seed++) {
    const scene = generateScene(seed);
    for (const name of IMAGE_FAMILIES) {
      const qa = FAMILIES[name].ask(scene, random);
      if (!qa) continue;
      count(byQuestion.get(qa.question) ?? byQuestion.set(qa.question, new Map()).get(qa.question)!, qa.answer);
      count(byFamily.get(name) ?? byFamily.set(name, new Map()).get(name)!, qa.answer);
    }
  }
  const mostCommon = (map: Map<string, number> | undefined) => (map ? [...map].sort((a, b) => b[1] - a[1])[0]![0] : '');
  return items.map((it) => mostCommon(byQuestion.get(it.qa.question) ?? byFamily.get(it.qa.family)));
}

/** Accuracy per family of `answers` (one per item) against the oracle. */
export function gradeAnswers(items: readonly EvaluationItem[], answers: readonly string[]): FamilyAccuracy[] {
  const table = new Map<FamilyName, FamilyAccuracy>();
  items.forEach(({ qa }, i) => {
    const row = table.get(qa.family) ?? { family: qa.family, dataType: FAMILIES[qa.family].dataType, n: 0, right: 0, accuracy: 0, examples: [] };
    const answer = answers[i] ?? '';
    row.n++;
    if (isRightAnswer(qa.family, qa.answer, answer)) row.right++;
    else if (row.examples.length < 3) row.examples.push({ question: qa.question, truth: qa.answer, answer });
    table.set(qa.family, row);
  });
  return [...table.values()].map((row) => ({ ...row, accuracy: row.right / row.n }));
}

export async function evaluateWorldModel(images: number, files = worldModelPaths()): Promise<FamilyAccuracy[]> {
  const items = evaluationItems(images);
  return gradeAnswers(items, await engineAnswers(items, files));
}

function percent(right: number, n: number): string {
  return `${((100 * right) / n).toFixed(1)} %`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const images = Number(process.argv[2] ?? 200);
  const dirs = process.argv.slice(3);
  const started = Date.now();
  const items = evaluationItems(images);
  const columns: Array<{ name: string; rows: FamilyAccuracy[] }> = [{ name: 'blind', rows: gradeAnswers(items, blindAnswers(items)) }];
  for (const dir of dirs.length > 0 ? dirs : [undefined]) {
    const rows = gradeAnswers(items, await engineAnswers(items, dir ? worldModelPaths(dir) : undefined));
    columns.push({ name: dir ?? 'models/world', rows });
  }
  const lines = [`| family | data type | questions | ${columns.map((c) => c.name).join(' | ')} |`, `|---|---|---:|${columns.map(() => '---:').join('|')}|`];
  for (const [i, row] of columns[0]!.rows.entries()) {
    lines.push(`| ${row.family} | ${row.dataType} | ${row.n} | ${columns.map((c) => percent(c.rows[i]!.right, c.rows[i]!.n)).join(' | ')} |`);
  }
  const total = (rows: FamilyAccuracy[]) => percent(rows.reduce((s, r) => s + r.right, 0), rows.reduce((s, r) => s + r.n, 0));
  lines.push(`| all | | ${items.length} | ${columns.map((c) => total(c.rows)).join(' | ')} |`);
  console.log(lines.join('\n'));
  console.log(JSON.stringify(columns.slice(1).map((c) => ({ model: c.name, examples: c.rows.map((r) => ({ family: r.family, examples: r.examples })) })), null, 1));
  console.log(`${images} held-out images (seeds ${EVAL_FIRST_SEED}..${EVAL_FIRST_SEED + images - 1}), ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
