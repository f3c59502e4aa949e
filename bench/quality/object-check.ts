/**
 * Beyond the paper (issue 19, item 5), measured as an ablation: the triangle cannot catch a question
 * about an object the image does not have, because the same model writes Q and Q' and answers from
 * what is there. This check asks the generator itself, through a question form it was trained on,
 * how many objects of the colour and shape the question names there are: none means the object is
 * absent; two or more, for a reference that names nothing else (no size, no region), means it is
 * ambiguous. A triplet that fails is not kept. Questions that name no object pass.
 */
import { VisionModel } from '../../lib/vision-model.js';
import { stripImageToken } from '../../lib/engine/llava-prompt.js';
import { FORMAT_SUFFIXES } from '../../lib/srf/data-types.js';
import { normalizeForExactMatch } from '../../lib/srf/normalize.js';
import { PLURAL } from '../../lib/world/families.js';
import { REFERENCE_PATTERN, referenceFromGroups, type Reference } from '../../lib/world/refer.js';
import type { ModelFiles } from './vqa.js';

const NAMED_OBJECT = new RegExp(`\\bthe ${REFERENCE_PATTERN}(?=[?.\\n]|$)`);

export interface ObjectCheck {
  /** The count question asked about the image. */
  question: string;
  reference: Reference;
}

/** The count question for the object a question names ("the red circle at the top" -> "How many red circles are there?"), or null. */
export function objectCheckFor(question: string): ObjectCheck | null {
  const m = NAMED_OBJECT.exec(stripImageToken(question));
  if (!m) return null;
  const reference = referenceFromGroups(m[1], m[2], m[3], m[4]);
  const noun = PLURAL[reference.shape ?? 'object'];
  return { question: `How many ${reference.colour ? `${reference.colour} ` : ''}${noun} are there?\n${FORMAT_SUFFIXES.shortAnswer}`, reference };
}

/** Whether the model's count says the reference names exactly one object it can see (unreadable counts pass). */
export function passesObjectCheck(check: ObjectCheck, reply: string): boolean {
  const count = Number.parseInt(normalizeForExactMatch(reply), 10);
  if (!Number.isFinite(count)) return true;
  if (count === 0) return false;
  const namesOnlyColourAndShape = check.reference.size === undefined && check.reference.region === undefined;
  return !(namesOnlyColourAndShape && count >= 2);
}

export interface CheckedTriplet {
  id: string;
  /** The image's path as the engine opens it. */
  image: string;
  question: string;
}

/** The ids of the triplets that fail the check, answered greedily by the generator in one batch. */
export async function failingObjectCheck(files: ModelFiles, triplets: readonly CheckedTriplet[]): Promise<{ failed: Set<string>; checked: number }> {
  const asked = triplets.flatMap((t) => {
    const check = objectCheckFor(t.question);
    return check ? [{ t, check }] : [];
  });
  const model = await VisionModel.open({ model: files.model, mmproj: files.mmproj, parallel: 8 });
  try {
    const replies = await model.questionToAnswer(asked.map(({ t, check }) => ({ image: t.image, question: check.question })), { sampling: { maxTokens: 8 } });
    const failed = new Set<string>();
    replies.forEach((reply, i) => {
      const { t, check } = asked[i]!;
      if (reply.ok && !passesObjectCheck(check, reply.text)) failed.add(t.id);
    });
    return { failed, checked: asked.length };
  } finally {
    await model.close();
  }
}
