/**
 * Is an answer right? The oracle's answer is the truth; how close a given answer must come depends on
 * the family's data type: exact match (normalised as the method's exact match is) for short answers,
 * yes/no and letters; box IoU >= 0.5 for REC (the usual RefCOCO rule); for free text (REG, brief and
 * detailed descriptions, facts) the same normalised exact match: the world's descriptions are
 * templated, so a right description is word for word the oracle's.
 */
import { parseBoxAnswer } from '../srf/box.js';
import { boxIoU } from '../srf/metrics.js';
import { normalizeForExactMatch, normalizeText } from '../srf/normalize.js';
import { FAMILIES, type FamilyName } from './families.js';

/** IoU a REC box needs to count as right. */
export const BOX_IOU_THRESHOLD = 0.5;

export function isRightAnswer(family: FamilyName, truth: string, answer: string): boolean {
  switch (FAMILIES[family].dataType) {
    case 'box': {
      const a = parseBoxAnswer(answer);
      const b = parseBoxAnswer(truth);
      return a !== null && b !== null && boxIoU(a, b) >= BOX_IOU_THRESHOLD;
    }
    case 'short_answer':
    case 'multiple_choice':
      return normalizeForExactMatch(answer) === normalizeForExactMatch(truth);
    default:
      return normalizeText(answer) === normalizeText(truth);
  }
}
