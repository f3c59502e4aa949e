/**
 * Reading LLaVA instruction data (`llava_v1_5_mix665k.json` and files like it): one record at a
 * time, checked, turned into (question, answer) turns. Bad records fail with DATA_INVALID naming
 * the file, the record's position and id.
 */
import { SrfError } from '../errors.js';
import { isPlainObject } from '../util/validate.js';
import { IMAGE_TOKEN, stripImageToken } from '../engine/llava-prompt.js';

export interface LlavaTurn {
  from: 'human' | 'gpt';
  value: string;
}

/** A record of LLaVA's JSON format. Other keys are allowed (LLaVA's loader ignores them). */
export interface LlavaRecord {
  id: string | number;
  /** Relative to the image folder; absent for text-only records. */
  image?: string;
  conversations: LlavaTurn[];
  [key: string]: unknown;
}

export interface QaTurn {
  /** The human turn without `<image>`, trimmed; format suffixes and option lines kept. */
  question: string;
  /** The gpt turn, trimmed. */
  answer: string;
}

export interface LlavaSample {
  id: string;
  image?: string;
  turns: QaTurn[];
}

export interface RecordPlace {
  /** Position in the file (0-based). */
  index: number;
  file?: string;
}

function describe(place: RecordPlace, id?: unknown): string {
  const idPart = typeof id === 'string' || typeof id === 'number' ? ` (id ${JSON.stringify(id)})` : '';
  return `record ${place.index}${idPart}`;
}

function invalid(place: RecordPlace, id: unknown, problem: string): SrfError {
  return new SrfError('DATA_INVALID', `${describe(place, id)}: ${problem}`, place.file ? { file: place.file } : {});
}

/**
 * Checks one record and returns its turns. A record must have an `id` (string or number), at most one
 * `image` (a string), and `conversations` alternating human/gpt, starting with human, ending with gpt.
 * `<image>` may stand anywhere in the first human turn (some mix665k records put it last); it is
 * removed from the returned questions. A record without an image must not carry `<image>`.
 */
export function readLlavaRecord(value: unknown, place: RecordPlace): LlavaSample {
  if (!isPlainObject(value)) throw invalid(place, undefined, 'expected an object');
  const { id, image, conversations } = value;
  if (!(typeof id === 'number' && Number.isFinite(id)) && !(typeof id === 'string' && id !== '')) {
    throw invalid(place, id, `expected "id" to be a non-empty string or a number, received ${JSON.stringify(id)}`);
  }
  if (Array.isArray(image)) throw invalid(place, id, 'several images per record are not supported (LLaVA-1.5 takes one)');
  if (image !== undefined && (typeof image !== 'string' || image === '')) {
    throw invalid(place, id, `expected "image" to be a non-empty string, received ${JSON.stringify(image)}`);
  }
  if (!Array.isArray(conversations) || conversations.length < 2 || conversations.length % 2 !== 0) {
    throw invalid(place, id, 'expected "conversations" to be a list of human/gpt pairs');
  }
  const turns: QaTurn[] = [];
  for (let i = 0; i < conversations.length; i += 2) {
    const human: unknown = conversations[i];
    const gpt: unknown = conversations[i + 1];
    for (const [turn, from, at] of [[human, 'human', i], [gpt, 'gpt', i + 1]] as const) {
      if (!isPlainObject(turn) || turn.from !== from || typeof turn.value !== 'string') {
        throw invalid(place, id, `conversations[${at}] must be {"from": "${from}", "value": <string>}`);
      }
    }
    const question = (human as LlavaTurn).value;
    const answer = (gpt as LlavaTurn).value;
    if (image === undefined && question.includes(IMAGE_TOKEN)) {
      throw invalid(place, id, `conversations[${i}] carries ${IMAGE_TOKEN} but the record has no image`);
    }
    if (answer.includes(IMAGE_TOKEN)) throw invalid(place, id, `conversations[${i + 1}] (gpt) carries ${IMAGE_TOKEN}`);
    turns.push({ question: stripImageToken(question), answer: answer.trim() });
  }
  const sample: LlavaSample = { id: String(id), turns };
  if (image !== undefined) sample.image = image;
  return sample;
}
