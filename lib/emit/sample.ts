/**
 * The one shape every emitter writes from: a training sample with an image path and (Q, A) turns.
 * Kept synthetic triplets and records of the original LLaVA data both become one.
 */
import path from 'node:path';
import { SrfError, invalidArgument } from '../errors.js';
import { isPlainObject } from '../util/validate.js';
import { leavesFolder } from '../util/files.js';
import { isDataType, type DataType } from '../srf/data-types.js';
import { readLlavaRecord, type QaTurn, type RecordPlace } from '../srf/llava-data.js';
import { stripImageToken } from '../engine/llava-prompt.js';
import type { Triplet, TripletScore } from '../srf/score.js';

/** Scores a kept synthetic sample carries into LLaVA data, under the `srf` key. */
export interface SrfAnnotation {
  type: DataType;
  simQ: number;
  simA: number;
  score: number;
  /** SRF round that generated it (0-based). */
  round: number;
  paperFaithful: boolean;
}

export interface TrainingSample {
  id: string;
  /** Absolute, or already relative to the emit's imageRoot; absent for text-only samples. */
  image?: string;
  /** Questions without `<image>`; the emitter puts the image marker where its format wants it. */
  turns: QaTurn[];
  srf?: SrfAnnotation;
}

/** A triplet that survived selection, as the pipeline hands it over. */
export interface KeptTriplet extends Triplet, TripletScore {
  id: string;
  /** The unlabeled image it was generated from. */
  image: string;
  round: number;
}

function invalidKept(id: unknown, problem: string): SrfError {
  return new SrfError('DATA_INVALID', `kept triplet ${JSON.stringify(id)}: ${problem}`);
}

/** The training sample of a kept triplet: (I, Q, A) with its scores; Q' and A' are not training data. */
export function sampleFromTriplet(kept: KeptTriplet): TrainingSample {
  if (!isPlainObject(kept as unknown)) throw invalidArgument('a kept triplet', 'kept', kept);
  if (typeof kept.id !== 'string' || kept.id === '') throw invalidKept(kept.id, 'expected a non-empty string id');
  if (typeof kept.image !== 'string' || kept.image === '') throw invalidKept(kept.id, 'expected an image path');
  for (const key of ['question', 'answer'] as const) {
    if (typeof kept[key] !== 'string' || kept[key].trim() === '') throw invalidKept(kept.id, `expected a non-empty ${key}`);
  }
  if (!isDataType(kept.type)) throw invalidKept(kept.id, `unknown data type ${JSON.stringify(kept.type)}`);
  for (const key of ['simQ', 'simA', 'score'] as const) {
    if (typeof kept[key] !== 'number' || !(kept[key] >= 0 && kept[key] <= 1)) throw invalidKept(kept.id, `${key} must be in [0, 1]`);
  }
  if (!Number.isInteger(kept.round) || kept.round < 0) throw invalidKept(kept.id, 'round must be a non-negative integer');
  return {
    id: kept.id,
    image: kept.image,
    turns: [{ question: stripImageToken(kept.question), answer: kept.answer.trim() }],
    srf: {
      type: kept.type,
      simQ: kept.simQ,
      simA: kept.simA,
      score: kept.score,
      round: kept.round,
      paperFaithful: kept.paperFaithful === true,
    },
  };
}

export interface FromLlavaOptions {
  /**
   * The folder the record's `image` is relative to. Given, the image becomes absolute so that it can be
   * re-based onto the emit's imageRoot (original and synthetic images usually live apart). Not given,
   * the path is kept as it is, relative to the emit's imageRoot.
   */
  imageFolder?: string;
}

/** A record of the original LLaVA data as a training sample (all its turns; empty turns kept as they are). */
export function sampleFromLlavaRecord(value: unknown, place: RecordPlace, options: FromLlavaOptions = {}): TrainingSample {
  const record = readLlavaRecord(value, place);
  const sample: TrainingSample = { id: record.id, turns: record.turns };
  if (record.image !== undefined) {
    sample.image = options.imageFolder === undefined ? record.image : path.resolve(options.imageFolder, record.image);
  }
  return sample;
}

/**
 * The image path as training data wants it: relative to imageRoot, with `/` separators. A relative
 * path is taken as already relative to imageRoot. A path that leads outside imageRoot is an error:
 * trainers join their image folder and this path, and a folder-escaping path breaks when data moves.
 */
export function relativeImagePath(image: string, imageRoot: string, sampleId: string): string {
  const posix = (p: string) => p.split(path.sep).join('/');
  const relative = path.isAbsolute(image) ? path.relative(path.resolve(imageRoot), image) : path.normalize(image);
  if (leavesFolder(relative)) {
    throw new SrfError('DATA_INVALID', `sample ${JSON.stringify(sampleId)}: image ${image} is not inside imageRoot ${imageRoot}`);
  }
  return posix(relative);
}

export function checkImageRoot(imageRoot: unknown): string {
  if (typeof imageRoot !== 'string' || imageRoot === '') throw invalidArgument('a folder path', 'imageRoot', imageRoot);
  return path.resolve(imageRoot);
}

/** Either input of the emitters, as a training sample. */
export function toTrainingSample(input: KeptTriplet | TrainingSample): TrainingSample {
  if (isPlainObject(input as unknown) && Array.isArray((input as TrainingSample).turns)) {
    const sample = input as TrainingSample;
    if (typeof sample.id !== 'string' || sample.id === '') throw invalidArgument('a non-empty string', 'sample.id', sample.id);
    if (sample.turns.length === 0) throw new SrfError('DATA_INVALID', `sample ${JSON.stringify(sample.id)}: no turns`);
    for (const turn of sample.turns) {
      if (!isPlainObject(turn as unknown) || typeof turn.question !== 'string' || typeof turn.answer !== 'string') {
        throw new SrfError('DATA_INVALID', `sample ${JSON.stringify(sample.id)}: turns must be {question, answer} strings`);
      }
    }
    return sample;
  }
  return sampleFromTriplet(input as KeptTriplet);
}
