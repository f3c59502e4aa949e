/**
 * The held-out VQA test: one question of every image family on each of a set of held-out world
 * images, answered by a model through the engine (IQ->A, greedy, as the method's re-prediction
 * decodes), graded by the oracle (lib/world/grade.ts).
 */
import path from 'node:path';
import { VisionModel } from '../../lib/vision-model.js';
import { createRandom } from '../../lib/srf/random.js';
import { FAMILIES, FAMILY_NAMES, type FamilyName, type QuestionAnswer } from '../../lib/world/families.js';
import { isRightAnswer } from '../../lib/world/grade.js';
import { generateScene } from '../../lib/world/scene.js';
import { QUALITY_SEEDS, writeHeldOutImages } from './images.js';

export interface VqaItem {
  image: string;
  qa: QuestionAnswer;
}

/** Writes the images (scenes from `firstSeed` on) into `dir`; the questions are drawn with a fixed seed. */
export async function buildVqaSet(dir: string, images: number, firstSeed: number = QUALITY_SEEDS.vqa): Promise<VqaItem[]> {
  const files = await writeHeldOutImages(dir, firstSeed, images);
  const random = createRandom(12);
  const items: VqaItem[] = [];
  files.forEach((file, i) => {
    const scene = generateScene(firstSeed + i);
    for (const name of FAMILY_NAMES) {
      if (!FAMILIES[name].needsImage) continue;
      const qa = FAMILIES[name].ask(scene, random);
      if (qa) items.push({ image: path.join(dir, file), qa });
    }
  });
  return items;
}

export interface ModelFiles {
  model: string;
  mmproj: string;
  lora?: string;
}

/** Whether each item was answered right, in order. */
export async function answerVqa(files: ModelFiles, items: readonly VqaItem[]): Promise<boolean[]> {
  const model = await VisionModel.open({
    model: files.model,
    mmproj: files.mmproj,
    ...(files.lora ? { loras: [{ path: files.lora }] } : {}),
    parallel: 8,
    threads: 1,
  });
  try {
    const replies = await model.questionToAnswer(items.map((it) => ({ image: it.image, question: it.qa.question })), { sampling: { maxTokens: 96 } });
    return replies.map((reply, i) => reply.ok && isRightAnswer(items[i]!.qa.family, items[i]!.qa.answer, reply.text));
  } finally {
    await model.close();
  }
}

export function familiesOf(items: readonly VqaItem[]): FamilyName[] {
  return FAMILY_NAMES.filter((name) => items.some((it) => it.qa.family === name));
}
