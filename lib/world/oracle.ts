/**
 * The oracle: the true answer to any question of the world's families about any world scene, from
 * the scene's ground truth; and, where it has none, why. Issue 12's quality benchmark grades
 * generated triplets with it.
 */
import { stripImageToken } from '../engine/llava-prompt.js';
import { FAMILIES, FAMILY_NAMES, type FamilyName, type UnanswerableCause } from './families.js';
import type { Scene } from './scene.js';

export interface OracleAnswer {
  family: FamilyName;
  answer: string;
}

/** Why the oracle has no answer: the question has no family's form (garbled), or its family's reason. */
export type UnanswerableReason = UnanswerableCause | 'garbled';

export interface OracleRefusal {
  /** The family whose form the question has; null when garbled. */
  family: FamilyName | null;
  unanswerable: UnanswerableReason;
}

/**
 * The family of the question and its true answer for the scene, or why there is none: the question
 * has no family's form, names an object the scene does not have, fits several, or is malformed.
 * `<image>` markers are ignored, as LLaVA's preprocessing does.
 */
export function oracleReading(scene: Scene | null, question: string): OracleAnswer | OracleRefusal {
  const text = stripImageToken(question);
  let refusal: OracleRefusal | null = null;
  for (const name of FAMILY_NAMES) {
    const reading = FAMILIES[name].read(scene, text);
    if (reading === null) continue;
    if ('answer' in reading) return { family: name, answer: reading.answer };
    refusal ??= { family: name, unanswerable: reading.unanswerable };
  }
  return refusal ?? { family: null, unanswerable: 'garbled' };
}

/**
 * The family of the question and its true answer for the scene (null for a text-only question);
 * null when the question is of no family, or names an object the scene does not have (or several).
 */
export function oracleAnswer(scene: Scene | null, question: string): OracleAnswer | null {
  const reading = oracleReading(scene, question);
  return 'answer' in reading ? reading : null;
}
