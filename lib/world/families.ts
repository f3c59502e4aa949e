/**
 * The question families of the world, one per kind of LLaVA-1.5 instruction data, together
 * covering every data type the method scores (lib/srf/data-types.ts). Each family can ask a question
 * about a scene (a template filled at random) and answer any question of its template for any scene:
 * the answer comes from the ground truth alone, never from how the question was made.
 */
import { FORMAT_SUFFIXES, type DataType } from '../srf/data-types.js';
import { formatBox, parseBox } from '../srf/box.js';
import { boxIoU } from '../srf/metrics.js';
import type { Random } from '../srf/random.js';
import { REFERENCE_PATTERN, REGION_PHRASES, lookUp, makeReference, referenceFromGroups, referenceText, type Reference } from './refer.js';
import { BACKGROUNDS, COLOURS, SHAPES, SIZES, objectBox, objectRegion, pick, readingOrder, type Scene, type SceneObject } from './scene.js';

const SHORT = FORMAT_SUFFIXES.shortAnswer;
const CHOICE = FORMAT_SUFFIXES.multipleChoice;

export const FAMILY_NAMES = ['colour', 'shape', 'count', 'position', 'exists', 'choice', 'rec', 'reg', 'brief', 'detail', 'fact'] as const;
export type FamilyName = (typeof FAMILY_NAMES)[number];

export interface QuestionAnswer {
  family: FamilyName;
  question: string;
  answer: string;
}

/**
 * Why a question of a family's form has no answer on a scene: the object it names is not there (or
 * there is no image), several objects fit its reference, or it is malformed (its reference names
 * the attribute it asks, its options lack the right one, its box does not parse).
 */
export type UnanswerableCause = 'absent' | 'ambiguous' | 'malformed';

/** A family's reading of a question of its form: the answer, or why there is none. */
export type Reading = { answer: string } | { unanswerable: UnanswerableCause };

export interface Family {
  name: FamilyName;
  /** The data type lib/srf/data-types.ts gives this family's pairs. */
  dataType: DataType;
  /** Whether the question is about an image (false: text-only, as some of mix665k is). */
  needsImage: boolean;
  /** A question about the scene with its answer, or null when the scene offers none. */
  ask(scene: Scene, random: Random): QuestionAnswer | null;
  /** The reading of `question` when it has this family's form (null when it has not). */
  read(scene: Scene | null, question: string): Reading | null;
  /** The answer to `question` when it is of this family (null when it is not, or names no object of the scene). */
  answer(scene: Scene | null, question: string): string | null;
}

/** A family from its reading: its answer is the reading's, when there is one. */
function family(spec: Omit<Family, 'answer'>): Family {
  return {
    ...spec,
    answer(scene, question) {
      const reading = spec.read(scene, question);
      return reading !== null && 'answer' in reading ? reading.answer : null;
    },
  };
}

/** A question about the image when there is none: nothing it names is there. */
const NO_IMAGE: Reading = { unanswerable: 'absent' };

function randomObject(scene: Scene, random: Random): SceneObject | null {
  return scene.objects.length === 0 ? null : pick(scene.objects, random);
}

export const PLURAL: Readonly<Record<string, string>> = { circle: 'circles', square: 'squares', triangle: 'triangles', cross: 'crosses', star: 'stars', object: 'objects' };
const SINGULAR = new Map(Object.entries(PLURAL).map(([one, many]) => [many, one]));
const NUMBER_WORDS = ['no', 'one', 'two', 'three', 'four', 'five', 'six'];

/** "the red circle"-style question about one object; `without` keeps the asked attribute out of the reference. */
function objectQuestion(
  name: FamilyName,
  dataType: DataType,
  without: 'colour' | 'shape' | 'region',
  template: (ref: string) => string,
  pattern: RegExp,
  value: (object: SceneObject) => string,
): Family {
  return family({
    name,
    dataType,
    needsImage: true,
    ask(scene, random) {
      const object = randomObject(scene, random);
      const reference = object && makeReference(scene, object, random, [without]);
      if (!object || !reference) return null;
      const question = template(referenceText(reference));
      return { family: name, question, answer: value(object) };
    },
    read(scene, question) {
      const m = pattern.exec(question.trim());
      if (!m) return null;
      if (!scene) return NO_IMAGE;
      const reference = referenceFromGroups(m[1], m[2], m[3], m[4]);
      if (reference[without] !== undefined) return { unanswerable: 'malformed' };
      const found = lookUp(scene, reference);
      return 'object' in found ? { answer: value(found.object) } : found;
    },
  });
}

const colourFamily = objectQuestion(
  'colour',
  'short_answer',
  'colour',
  (ref) => `What color is the ${ref}?\n${SHORT}`,
  new RegExp(`^What color is the ${REFERENCE_PATTERN}\\?\\n${escape(SHORT)}$`),
  (o) => o.colour,
);

const shapeFamily = objectQuestion(
  'shape',
  'short_answer',
  'shape',
  (ref) => `What shape is the ${ref}?\n${SHORT}`,
  new RegExp(`^What shape is the ${REFERENCE_PATTERN}\\?\\n${escape(SHORT)}$`),
  (o) => o.shape,
);

const positionFamily = objectQuestion(
  'position',
  'short_answer',
  'region',
  (ref) => `Where is the ${ref}?\n${SHORT}`,
  new RegExp(`^Where is the ${REFERENCE_PATTERN}\\?\\n${escape(SHORT)}$`),
  (o) => objectRegion(o),
);

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Counts: "How many red objects are there?", "How many stars are there?", "How many objects are there?". */
const COUNT_PATTERN = new RegExp(`^How many (?:(${COLOURS.join('|')}) )?(${Object.values(PLURAL).join('|')}) are there\\?\\n${escape(SHORT)}$`);
const countFamily: Family = family({
  name: 'count',
  dataType: 'short_answer',
  needsImage: true,
  ask(scene, random) {
    const kind = random();
    const colour = kind < 0.4 ? pick(COLOURS, random) : undefined;
    const noun = kind >= 0.4 && kind < 0.8 ? pick(SHAPES, random) : 'object';
    const question = `How many ${colour ? `${colour} ` : ''}${PLURAL[noun]} are there?\n${SHORT}`;
    const answer = countFamily.answer(scene, question);
    return answer === null ? null : { family: 'count', question, answer };
  },
  read(scene, question) {
    const m = COUNT_PATTERN.exec(question.trim());
    if (!m) return null;
    if (!scene) return NO_IMAGE;
    const noun = SINGULAR.get(m[2] as string);
    const count = scene.objects.filter((o) => (m[1] === undefined || o.colour === m[1]) && (noun === 'object' || o.shape === noun)).length;
    return { answer: String(count) };
  },
});

/** Yes/no: "Is there a red circle in the image?" (answers Yes / No, as in LLaVA's data). */
const EXISTS_PATTERN = new RegExp(`^Is there an? (?:(small|large) )?(${COLOURS.join('|')}) (${SHAPES.join('|')}) in the image\\?$`);
const existsFamily: Family = family({
  name: 'exists',
  dataType: 'multiple_choice',
  needsImage: true,
  ask(scene, random) {
    let reference: Reference;
    const object = randomObject(scene, random);
    // A named size is drawn the same way whether or not the object is there (the right size or not),
    // so naming one says nothing about the answer.
    reference = object && random() < 0.5 ? { colour: object.colour, shape: object.shape } : { colour: pick(COLOURS, random), shape: pick(SHAPES, random) };
    if (random() < 0.3) reference.size = pick(SIZES, random);
    const words = [reference.size, reference.colour, reference.shape].filter(Boolean).join(' ');
    const question = `Is there ${/^[aeiou]/.test(words) ? 'an' : 'a'} ${words} in the image?`;
    return { family: 'exists', question, answer: existsFamily.answer(scene, question) as string };
  },
  read(scene, question) {
    const m = EXISTS_PATTERN.exec(question.trim());
    if (!m) return null;
    if (!scene) return NO_IMAGE;
    const found = scene.objects.some((o) => (m[1] === undefined || o.size === m[1]) && o.colour === m[2] && o.shape === m[3]);
    return { answer: found ? 'Yes' : 'No' };
  },
});

/** Multiple choice with letters (A-OKVQA style): the colour or the shape of an object among four options. */
const LETTERS = ['A', 'B', 'C', 'D'];
const CHOICE_PATTERN = new RegExp(
  `^What (color|shape) is the ${REFERENCE_PATTERN}\\?\\nA\\. (\\w+)\\nB\\. (\\w+)\\nC\\. (\\w+)\\nD\\. (\\w+)\\n${escape(CHOICE)}$`,
);
const choiceFamily: Family = family({
  name: 'choice',
  dataType: 'multiple_choice',
  needsImage: true,
  ask(scene, random) {
    const object = randomObject(scene, random);
    const asks = random() < 0.5 ? 'color' : 'shape';
    const reference = object && makeReference(scene, object, random, [asks === 'color' ? 'colour' : 'shape']);
    if (!object || !reference) return null;
    const pool: readonly string[] = asks === 'color' ? COLOURS : SHAPES;
    const right = asks === 'color' ? object.colour : object.shape;
    const wrong = pool.filter((v) => v !== right);
    const options: string[] = [];
    while (options.length < 3) {
      const w = pick(wrong, random);
      if (!options.includes(w)) options.push(w);
    }
    options.splice(Math.floor(random() * 4), 0, right);
    const lines = options.map((o, i) => `${LETTERS[i]}. ${o}`).join('\n');
    const question = `What ${asks} is the ${referenceText(reference)}?\n${lines}\n${CHOICE}`;
    return { family: 'choice', question, answer: choiceFamily.answer(scene, question) as string };
  },
  read(scene, question) {
    const m = CHOICE_PATTERN.exec(question.trim());
    if (!m) return null;
    if (!scene) return NO_IMAGE;
    const found = lookUp(scene, referenceFromGroups(m[2], m[3], m[4], m[5]));
    if (!('object' in found)) return found;
    const value = m[1] === 'color' ? found.object.colour : found.object.shape;
    const index = [m[6], m[7], m[8], m[9]].indexOf(value);
    return index < 0 ? { unanswerable: 'malformed' } : { answer: LETTERS[index] as string };
  },
});

/** REC, LLaVA's wording: the box of the object a phrase describes. */
const REC_PREFIX = 'Please provide the bounding box coordinate of the region this sentence describes: ';
const REC_PATTERN = new RegExp(`^${escape(REC_PREFIX)}the ${REFERENCE_PATTERN}\\.$`);
const recFamily: Family = family({
  name: 'rec',
  dataType: 'box',
  needsImage: true,
  ask(scene, random) {
    const object = randomObject(scene, random);
    const reference = object && makeReference(scene, object, random);
    if (!object || !reference) return null;
    return { family: 'rec', question: `${REC_PREFIX}the ${referenceText(reference)}.`, answer: formatBox(objectBox(object)) };
  },
  read(scene, question) {
    const m = REC_PATTERN.exec(question.trim());
    if (!m) return null;
    if (!scene) return NO_IMAGE;
    const found = lookUp(scene, referenceFromGroups(m[1], m[2], m[3], m[4]));
    return 'object' in found ? { answer: formatBox(objectBox(found.object)) } : found;
  },
});

/** REG, LLaVA's wording: a short description of the object in a box. */
const REG_PREFIX = 'Please provide a short description for this region: ';
function describeObject(object: SceneObject): string {
  return `A ${object.size} ${object.colour} ${object.shape}.`;
}
const regFamily: Family = family({
  name: 'reg',
  dataType: 'region_text',
  needsImage: true,
  ask(scene, random) {
    const object = randomObject(scene, random);
    if (!object) return null;
    return { family: 'reg', question: `${REG_PREFIX}${formatBox(objectBox(object))}`, answer: describeObject(object) };
  },
  read(scene, question) {
    const text = question.trim();
    if (!text.startsWith(REG_PREFIX)) return null;
    if (!scene) return NO_IMAGE;
    const box = parseBox(text.slice(REG_PREFIX.length));
    if (!box) return { unanswerable: 'malformed' };
    // The object whose box the region matches best (IoU >= 0.5).
    let best: SceneObject | null = null;
    let bestIou = 0.5;
    for (const o of scene.objects) {
      const overlap = boxIoU(box, objectBox(o));
      if (overlap >= bestIou) [best, bestIou] = [o, overlap];
    }
    return best ? { answer: describeObject(best) } : { unanswerable: 'absent' };
  },
});

function listObjects(objects: readonly SceneObject[]): string {
  const names = objects.map((o) => `a ${o.colour} ${o.shape}`);
  return names.length <= 1 ? (names[0] ?? 'nothing') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}
function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** One-line description (short free text), objects in reading order. */
const BRIEF_QUESTIONS = ['What is in the image?', 'Describe the image briefly.'];
const briefFamily: Family = family({
  name: 'brief',
  dataType: 'short_text',
  needsImage: true,
  ask(scene, random) {
    const question = pick(BRIEF_QUESTIONS, random);
    return { family: 'brief', question, answer: briefFamily.answer(scene, question) as string };
  },
  read(scene, question) {
    if (!BRIEF_QUESTIONS.includes(question.trim())) return null;
    if (!scene) return NO_IMAGE;
    return { answer: `${capitalise(listObjects(readingOrder(scene.objects)))} on a ${scene.background} background.` };
  },
});

/** Detailed description (long text): how many objects, then one sentence per object in reading order. */
const DETAIL_QUESTION = 'Describe the image in detail.';
const detailFamily: Family = family({
  name: 'detail',
  dataType: 'long_text',
  needsImage: true,
  ask(scene) {
    return { family: 'detail', question: DETAIL_QUESTION, answer: detailFamily.answer(scene, DETAIL_QUESTION) as string };
  },
  read(scene, question) {
    if (question.trim() !== DETAIL_QUESTION) return null;
    if (!scene) return NO_IMAGE;
    const n = scene.objects.length;
    const sentences = [n === 1 ? `There is one object on a ${scene.background} background.` : `There are ${NUMBER_WORDS[n]} objects on a ${scene.background} background.`];
    for (const o of readingOrder(scene.objects)) sentences.push(`A ${o.size} ${o.colour} ${o.shape} is ${REGION_PHRASES[objectRegion(o)]}.`);
    return { answer: sentences.join(' ') };
  },
});

/** Text-only questions (mix665k has some): facts about shapes and colours, no image needed. */
const FACTS: ReadonlyArray<readonly [string, string]> = [
  ['How many sides does a triangle have?', 'A triangle has three sides.'],
  ['How many sides does a square have?', 'A square has four sides.'],
  ['How many points does a star have?', 'A star has five points.'],
  ['What color do you get when you mix red and yellow?', 'Mixing red and yellow gives orange.'],
  ['What color do you get when you mix blue and yellow?', 'Mixing blue and yellow gives green.'],
  ['What color do you get when you mix red and blue?', 'Mixing red and blue gives purple.'],
  ['Which shape has no corners?', 'A circle has no corners.'],
];
const FACT_ANSWERS = new Map(FACTS);
const factFamily: Family = family({
  name: 'fact',
  dataType: 'short_text',
  needsImage: false,
  ask(_scene, random) {
    const [question, answer] = pick(FACTS, random);
    return { family: 'fact', question, answer };
  },
  read(_scene, question) {
    const answer = FACT_ANSWERS.get(question.trim());
    return answer === undefined ? null : { answer };
  },
});

export const FAMILIES: Readonly<Record<FamilyName, Family>> = {
  colour: colourFamily,
  shape: shapeFamily,
  count: countFamily,
  position: positionFamily,
  exists: existsFamily,
  choice: choiceFamily,
  rec: recFamily,
  reg: regFamily,
  brief: briefFamily,
  detail: detailFamily,
  fact: factFamily,
};

export { BACKGROUNDS };
