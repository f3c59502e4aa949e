/**
 * The oracle: the true answer to any question of the world's families about any world scene, from
 * the scene's ground truth. Issue 12's quality benchmark grades generated triplets with it.
 */
import { stripImageToken } from '../engine/llava-prompt.js';
import { FAMILIES, FAMILY_NAMES, type FamilyName } from './families.js';
import type { Scene } from './scene.js';

export interface OracleAnswer {
  family: FamilyName;
  answer: string;
}

/**
 * The family of the question and its true answer for the scene (null for a text-only question);
 * null when the question is of no family, or names an object the scene does not have (or several).
 * `<image>` markers are ignored, as LLaVA's preprocessing does.
 */
export function oracleAnswer(scene: Scene | null, question: string): OracleAnswer | null {
  const text = stripImageToken(question);
  for (const name of FAMILY_NAMES) {
    const answer = FAMILIES[name].answer(scene, text);
    if (answer !== null) return { family: name, answer };
  }
  return null;
}
