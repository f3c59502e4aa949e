/**
 * Is a generated triplet right? The question must be one the oracle can answer on that image (a
 * question of a world family about objects the scene has, named unambiguously), and the answer must
 * be the oracle's by lib/world/grade.ts's rule: exact match after normalising for short answers,
 * yes/no and letters; box IoU >= 0.5 for REC; normalised word-for-word match for free text (the
 * world's descriptions are templated, so a right description is the oracle's sentence).
 * A question the oracle cannot answer makes the triplet wrong: training on it teaches the model to
 * talk about what is not there. Its cause is kept: no family's form (garbled), an object the image
 * does not have, a reference several objects fit, or a malformed question of a family's form.
 */
import { isRightAnswer } from '../../lib/world/grade.js';
import type { FamilyName } from '../../lib/world/families.js';
import { oracleReading, type UnanswerableReason } from '../../lib/world/oracle.js';
import type { Scene } from '../../lib/world/scene.js';

export type Verdict = 'right' | 'wrong-answer' | 'unanswerable';

export interface Grade {
  verdict: Verdict;
  right: boolean;
  /** The question's family, when the oracle recognises it. */
  family: FamilyName | null;
  /** The oracle's answer, when it has one. */
  truth: string | null;
  /** Why the oracle has no answer, when it has none. */
  cause: UnanswerableReason | null;
}

export function gradeTriplet(scene: Scene | null, question: string, answer: string): Grade {
  const oracle = oracleReading(scene, question);
  if (!('answer' in oracle)) return { verdict: 'unanswerable', right: false, family: oracle.family, truth: null, cause: oracle.unanswerable };
  const right = isRightAnswer(oracle.family, oracle.answer, answer);
  return { verdict: right ? 'right' : 'wrong-answer', right, family: oracle.family, truth: oracle.answer, cause: null };
}
