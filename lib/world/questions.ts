/**
 * A held-out evaluation set of the world in LLaVA's question-file format, with its truth from the
 * oracle: one question of every image family per scene, the family as the category. Scene seeds start
 * at WORLD_QUESTIONS_SEED, apart from the training, demo, parity, evaluation and benchmark seeds.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRandom } from '../srf/random.js';
import { worldImageFile } from './dataset.js';
import { FAMILIES, FAMILY_NAMES } from './families.js';
import { WORLD_HELD_OUT_SEED } from './model-files.js';
import { renderScenePng } from './render.js';
import { generateScene } from './scene.js';

export const WORLD_QUESTIONS_SEED = WORLD_HELD_OUT_SEED + 600_000;

export interface WrittenWorldQuestions {
  images: number;
  questions: number;
  questionsFile: string;
  truthFile: string;
  imageFolder: string;
}

export async function writeWorldQuestions(dir: string, options: { images: number; firstSeed?: number; size?: number }): Promise<WrittenWorldQuestions> {
  const imageFolder = path.join(dir, 'images');
  await mkdir(imageFolder, { recursive: true });
  const random = createRandom(13);
  const questions: string[] = [];
  const truth: string[] = [];
  for (let i = 0; i < options.images; i++) {
    const scene = generateScene((options.firstSeed ?? WORLD_QUESTIONS_SEED) + i);
    const image = worldImageFile(scene.seed);
    await writeFile(path.join(imageFolder, image), await renderScenePng(scene, options.size === undefined ? {} : { size: options.size }));
    for (const name of FAMILY_NAMES) {
      if (!FAMILIES[name].needsImage) continue;
      const qa = FAMILIES[name].ask(scene, random);
      if (!qa) continue;
      const questionId = `${scene.seed}-${name}`;
      questions.push(JSON.stringify({ question_id: questionId, image: `images/${image}`, text: qa.question, category: name }));
      truth.push(JSON.stringify({ question_id: questionId, answer: qa.answer, category: name }));
    }
  }
  const questionsFile = path.join(dir, 'questions.jsonl');
  const truthFile = path.join(dir, 'truth.jsonl');
  await writeFile(questionsFile, `${questions.join('\n')}\n`);
  await writeFile(truthFile, `${truth.join('\n')}\n`);
  return { images: options.images, questions: questions.length, questionsFile, truthFile, imageFolder: dir };
}
