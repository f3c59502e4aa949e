/**
 * LLaVA's own JSON format, for LLaVA's trainer (`--data_path`, `--image_folder`): a list of
 * `{ id, image, conversations: [{from: 'human', value: '<image>\n...'}, {from: 'gpt', value}] }`.
 */
import { SrfError } from '../errors.js';
import { isPlainObject } from '../util/validate.js';
import type { LlavaRecord } from '../srf/llava-data.js';
import { IMAGE_TOKEN } from '../engine/llava-prompt.js';
import { checkImageRoot, relativeImagePath, toTrainingSample, type KeptTriplet, type SrfAnnotation, type TrainingSample } from './sample.js';

export interface LlavaEmitOptions {
  /** The folder LLaVA's `--image_folder` will point at; images are written relative to it. */
  imageRoot: string;
}

export interface LlavaTrainingRecord extends LlavaRecord {
  /** Scores of a kept synthetic sample; LLaVA's loader ignores the key. */
  srf?: SrfAnnotation;
}

/** One LLaVA record. The image marker opens the first human turn, as LLaVA-1.5 trained. */
export function toLlavaRecord(input: KeptTriplet | TrainingSample, options: LlavaEmitOptions): LlavaTrainingRecord {
  const imageRoot = checkImageRoot(options?.imageRoot);
  const sample = toTrainingSample(input);
  const record: LlavaTrainingRecord = { id: sample.id, conversations: [] };
  if (sample.image !== undefined) record.image = relativeImagePath(sample.image, imageRoot, sample.id);
  sample.turns.forEach(({ question, answer }, i) => {
    const value = i === 0 && sample.image !== undefined ? `${IMAGE_TOKEN}\n${question}` : question;
    record.conversations.push({ from: 'human', value }, { from: 'gpt', value: answer });
  });
  if (sample.srf !== undefined) record.srf = { ...sample.srf };
  return record;
}

export type LlavaValidation = { ok: true; records: number } | { ok: false; problems: string[] };

function countImageTokens(text: string): number {
  return text.split(IMAGE_TOKEN).length - 1;
}

function recordProblems(value: unknown, index: number): string[] {
  if (!isPlainObject(value)) return [`record ${index}: expected an object`];
  const where = `record ${index}${typeof value.id === 'string' || typeof value.id === 'number' ? ` (id ${JSON.stringify(value.id)})` : ''}`;
  const problems: string[] = [];
  const { id, image, conversations } = value;
  if (!(typeof id === 'string' && id !== '') && !(typeof id === 'number' && Number.isFinite(id))) {
    problems.push(`${where}: missing "id"`);
  }
  if (image !== undefined && (typeof image !== 'string' || image === '')) problems.push(`${where}: "image" must be a non-empty string`);
  if (!Array.isArray(conversations) || conversations.length < 2 || conversations.length % 2 !== 0) {
    problems.push(`${where}: "conversations" must be a list of human/gpt pairs`);
    return problems;
  }
  let tokens = 0;
  for (const [i, turn] of (conversations as unknown[]).entries()) {
    const from = i % 2 === 0 ? 'human' : 'gpt';
    if (!isPlainObject(turn) || turn.from !== from || typeof turn.value !== 'string') {
      // The first broken turn says it; the marker checks would only repeat it.
      problems.push(`${where}: conversations[${i}] must be {"from": "${from}", "value": <string>}`);
      return problems;
    }
    const count = countImageTokens(turn.value);
    tokens += count;
    if (count > 0 && i > 0) problems.push(`${where}: ${IMAGE_TOKEN} in conversations[${i}]; only the first human turn may carry it`);
  }
  const first = conversations[0] as unknown;
  const firstTokens = isPlainObject(first) && typeof first.value === 'string' ? countImageTokens(first.value) : 0;
  if (image !== undefined && firstTokens !== 1) {
    problems.push(`${where}: the first human turn must carry ${IMAGE_TOKEN} exactly once (found ${firstTokens})`);
  }
  if (image === undefined && tokens > 0) problems.push(`${where}: ${IMAGE_TOKEN} in a record without "image"`);
  return problems;
}

/**
 * Checks what LLaVA's trainer needs: a list of records, each with an `id`, `conversations` of human/gpt
 * pairs starting with human, and `<image>` exactly once, in the first human turn, when `image` is set
 * (LLaVA swaps each marker for the image features, so a second one or one without an image breaks
 * training), none when it is not. Stops listing after `maxProblems`.
 */
export function validateLlavaDataset(json: unknown, maxProblems = 20): LlavaValidation {
  if (!Array.isArray(json)) return { ok: false, problems: ['expected a JSON list of records'] };
  const problems: string[] = [];
  for (let i = 0; i < json.length && problems.length < maxProblems; i++) problems.push(...recordProblems(json[i], i));
  return problems.length === 0 ? { ok: true, records: json.length } : { ok: false, problems: problems.slice(0, maxProblems) };
}

/** validateLlavaDataset that throws DATA_INVALID listing the first problems. */
export function assertLlavaDataset(json: unknown, file?: string): number {
  const result = validateLlavaDataset(json, 5);
  if (!result.ok) {
    throw new SrfError('DATA_INVALID', `not a valid LLaVA dataset: ${result.problems.join('; ')}`, file ? { file } : {});
  }
  return result.records;
}
