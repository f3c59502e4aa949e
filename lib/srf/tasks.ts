/**
 * Step 1 of the method: re-cut LLaVA instruction data into the three SRF tasks by masking —
 * I->QA (image in, question + answer out), IA->Q (image + answer in, question out) and IQ->A
 * (ordinary VQA) — as LLaVA JSON records for an outside trainer.
 */
import { invalidArgument } from '../errors.js';
import { checkFraction, checkSeed, isPlainObject } from '../util/validate.js';
import { readLlavaRecord, type LlavaRecord } from './llava-data.js';
import { resolveTemplates, type PromptTemplates, type TaskName } from './prompts.js';
import { IMAGE_TOKEN } from '../engine/llava-prompt.js';
import { createRandom } from './random.js';

export type { TaskName } from './prompts.js';
export const TASK_NAMES: readonly TaskName[] = ['iToQa', 'iaToQ', 'iqToA'];

export type TaskRatios = Record<TaskName, number>;

/** docs/METHOD.md: 50 % I->QA, 20 % IA->Q, 30 % IQ->A. */
export const DEFAULT_TASK_RATIOS: Readonly<TaskRatios> = Object.freeze({ iToQa: 0.5, iaToQ: 0.2, iqToA: 0.3 });

/** One (Q, A) turn of a LLaVA conversation, standing on its own. */
export interface SingleTurn {
  /** `${sampleId}#${turnIndex}` */
  id: string;
  sampleId: string;
  /** Position of the pair in the conversation (0-based). */
  turnIndex: number;
  /** As in the source record; absent for text-only samples. */
  image?: string;
  /** Without `<image>`; format suffix and option lines kept. */
  question: string;
  answer: string;
  /** The human turn as LLaVA expects it: `<image>\n` + question when there is an image, else the question. */
  humanValue: string;
}

export interface SkippedTurn {
  sampleId: string;
  turnIndex: number;
  reason: 'empty-question' | 'empty-answer';
}

export interface SplitResult {
  turns: SingleTurn[];
  /** Turns with an empty question or answer: reported, not turned into data. */
  skipped: SkippedTurn[];
}

export interface SplitOptions {
  /** The file the samples come from, for error messages. */
  file?: string;
}

/**
 * Splits multi-turn LLaVA conversations into single (Q, A) turns. Each turn of a sample with an image
 * is re-prefixed with `<image>\n` (a later turn needs the image as much as the first); the format
 * suffix stays. Malformed records throw DATA_INVALID (see readLlavaRecord).
 */
export function splitConversations(samples: Iterable<unknown>, options: SplitOptions = {}): SplitResult {
  if (samples === null || typeof (samples as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw invalidArgument('a list of LLaVA records', 'samples', samples);
  }
  const turns: SingleTurn[] = [];
  const skipped: SkippedTurn[] = [];
  let index = 0;
  for (const value of samples) {
    const sample = readLlavaRecord(value, options.file ? { index, file: options.file } : { index });
    index++;
    sample.turns.forEach(({ question, answer }, turnIndex) => {
      if (question === '' || answer === '') {
        skipped.push({ sampleId: sample.id, turnIndex, reason: question === '' ? 'empty-question' : 'empty-answer' });
        return;
      }
      const turn: SingleTurn = {
        id: `${sample.id}#${turnIndex}`,
        sampleId: sample.id,
        turnIndex,
        question,
        answer,
        humanValue: sample.image === undefined ? question : `${IMAGE_TOKEN}\n${question}`,
      };
      if (sample.image !== undefined) turn.image = sample.image;
      turns.push(turn);
    });
  }
  return { turns, skipped };
}

/** Checks that ratios are three numbers in [0, 1] summing to 1 (within 1e-6). */
export function checkTaskRatios(ratios: unknown): TaskRatios {
  if (!isPlainObject(ratios)) throw invalidArgument('an object {iToQa, iaToQ, iqToA}', 'ratios', ratios);
  for (const key of Object.keys(ratios)) {
    if (!(TASK_NAMES as readonly string[]).includes(key)) throw invalidArgument('one of iToQa, iaToQ, iqToA', 'ratios key', key);
  }
  const checked = {} as TaskRatios;
  for (const task of TASK_NAMES) {
    checked[task] = checkFraction(ratios[task], `ratios.${task}`);
  }
  const sum = checked.iToQa + checked.iaToQ + checked.iqToA;
  if (Math.abs(sum - 1) > 1e-6) throw invalidArgument('ratios summing to 1', 'ratios', `a sum of ${sum}`);
  return checked;
}

export interface TaskPlan {
  /** Draw probabilities for turns with an image. */
  image: TaskRatios;
  /** Text-only turns: always IQ->A. */
  textOnly: TaskRatios;
  /** Overall proportions expected from this plan. */
  expected: TaskRatios;
}

/**
 * Text-only turns can only be IQ->A. To keep the overall proportions at the target, turns with an
 * image make up for them: with f the text-only share of all turns,
 *  - f <= target IQ->A: image turns draw IQ->A with (target - f) / (1 - f) and the other two tasks
 *    with target / (1 - f); overall proportions then equal the target exactly (in expectation);
 *  - f > target IQ->A: image turns never draw IQ->A and split between I->QA and IA->Q in their
 *    target ratio (5 : 2 by default); IQ->A ends up at f, over target, the closest reachable mix.
 * With `compensate` false, image turns draw with the target ratios as given.
 */
export function planTaskRatios(target: TaskRatios, imageTurns: number, textOnlyTurns: number, compensate = true): TaskPlan {
  const ratios = checkTaskRatios(target);
  const textOnly: TaskRatios = { iToQa: 0, iaToQ: 0, iqToA: 1 };
  const total = imageTurns + textOnlyTurns;
  const f = total > 0 ? textOnlyTurns / total : 0;
  let image: TaskRatios = { ...ratios };
  if (compensate && f > 0 && f < 1) {
    if (f <= ratios.iqToA) {
      image = { iToQa: ratios.iToQa / (1 - f), iaToQ: ratios.iaToQ / (1 - f), iqToA: (ratios.iqToA - f) / (1 - f) };
    } else {
      const rest = ratios.iToQa + ratios.iaToQ;
      image = rest > 0 ? { iToQa: ratios.iToQa / rest, iaToQ: ratios.iaToQ / rest, iqToA: 0 } : { iToQa: 0, iaToQ: 0, iqToA: 1 };
    }
  }
  const expected = {} as TaskRatios;
  for (const task of TASK_NAMES) expected[task] = f * textOnly[task] + (1 - f) * image[task];
  return { image, textOnly, expected };
}

export interface MultiTaskOptions {
  /** Default DEFAULT_TASK_RATIOS; must hold all three and sum to 1. */
  ratios?: TaskRatios;
  /** Seed of the task draw. Default 0. */
  seed?: number;
  templates?: Partial<PromptTemplates>;
  /** Let image turns make up for text-only turns (see planTaskRatios). Default true. */
  compensateTextOnly?: boolean;
  file?: string;
}

/** A training record of the multi-task data; `srf` says where it came from (LLaVA's loader ignores it). */
export interface MultiTaskRecord extends LlavaRecord {
  srf: { task: TaskName; sourceId: string; turn: number };
}

export interface MultiTaskData {
  records: MultiTaskRecord[];
  counts: Record<TaskName, number>;
  imageTurns: number;
  textOnlyTurns: number;
  plan: TaskPlan;
  skipped: SkippedTurn[];
}

function humanTurn(image: string | undefined, text: string): { from: 'human'; value: string } {
  return { from: 'human', value: image === undefined ? text : `${IMAGE_TOKEN}\n${text}` };
}

/** The record of one turn for one task: the instruction as the human turn, the masked part as the gpt turn. */
export function taskRecord(turn: SingleTurn, task: TaskName, templates: PromptTemplates): MultiTaskRecord {
  let human: string;
  let target: string;
  switch (task) {
    case 'iToQa':
      human = templates.iToQaInstruction;
      target = `Question: ${turn.question}\nAnswer: ${turn.answer}`;
      break;
    case 'iaToQ':
      human = templates.iaToQInstruction(turn.answer);
      target = turn.question;
      break;
    case 'iqToA':
      human = templates.iqToAInstruction(turn.question);
      target = turn.answer;
      break;
  }
  const record: MultiTaskRecord = {
    id: `${turn.id}:${task}`,
    conversations: [humanTurn(turn.image, human), { from: 'gpt', value: target }],
    srf: { task, sourceId: turn.sampleId, turn: turn.turnIndex },
  };
  if (turn.image !== undefined) record.image = turn.image;
  return record;
}

/**
 * The task of one single turn under `plan`: text-only turns always go to IQ->A; image turns are
 * drawn with one number from `random` (so a streamed file and an in-memory list agree).
 */
export function drawTask(turn: { image?: string | undefined }, plan: TaskPlan, random: () => number): TaskName {
  if (turn.image === undefined) return 'iqToA';
  const draw = random();
  if (draw < plan.image.iToQa) return 'iToQa';
  // iqToA = 0 must never be drawn, even where the two others sum to 0.9999999999999999
  if (plan.image.iqToA === 0 || draw < plan.image.iToQa + plan.image.iaToQ) return 'iaToQ';
  return 'iqToA';
}

/**
 * Builds the step-1 training data: every single turn goes to one task by a seeded draw (one draw per
 * turn with an image, in input order); text-only turns always go to IQ->A. Ratios are over turns.
 */
export function buildMultiTaskData(samples: Iterable<unknown>, options: MultiTaskOptions = {}): MultiTaskData {
  if (!isPlainObject(options as unknown)) throw invalidArgument('an object', 'options', options);
  const ratios = checkTaskRatios(options.ratios ?? DEFAULT_TASK_RATIOS);
  const seed = checkSeed(options.seed ?? 0, 'seed');
  const templates = resolveTemplates(options.templates);
  const { turns, skipped } = splitConversations(samples, options.file ? { file: options.file } : {});
  const textOnlyTurns = turns.filter((turn) => turn.image === undefined).length;
  const imageTurns = turns.length - textOnlyTurns;
  const plan = planTaskRatios(ratios, imageTurns, textOnlyTurns, options.compensateTextOnly ?? true);

  const random = createRandom(seed);
  const counts: Record<TaskName, number> = { iToQa: 0, iaToQ: 0, iqToA: 0 };
  const records = turns.map((turn) => {
    const task = drawTask(turn, plan, random);
    counts[task]++;
    return taskRecord(turn, task, templates);
  });
  return { records, counts, imageTurns, textOnlyTurns, plan, skipped };
}
