/**
 * Step 1 over a file: llava_v1_5_mix665k.json (about 1 GB, more than one V8 string can hold) in,
 * the multi-task LLaVA JSON out, streamed in two passes (count turns, then draw and write), so memory
 * stays flat. The draw is the one of lib/srf/tasks.ts buildMultiTaskData — same seed, same data — and
 * the records are made by its taskRecord.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EMITTERS, droppedWarning, type EmitFormat, type EmitWriter } from '../emit/emitters.js';
import { DEFAULT_OPENAI_IMAGES, type OpenAiImages } from '../emit/openai.js';
import { RecordFileWriter } from '../emit/record-file.js';
import { sampleFromLlavaRecord } from '../emit/sample.js';
import { checkSeed } from '../util/validate.js';
import { invalidArgument } from '../errors.js';
import { FAMILY_NAMES, familyTrainer } from '../engine/families.js';
import type { TrainerRecord } from '../outputs/manifest.js';
import { readLlavaRecord } from '../srf/llava-data.js';
import { templateStrings, templatesFromStrings, type PromptTemplateStrings } from '../srf/prompts.js';
import { createRandom } from '../srf/random.js';
import {
  DEFAULT_TASK_RATIOS,
  checkTaskRatios,
  drawTask,
  planTaskRatios,
  splitConversations,
  taskRecord,
  type SingleTurn,
  type SkippedTurn,
  type TaskName,
  type TaskPlan,
  type TaskRatios,
} from '../srf/tasks.js';
import { readJsonArray, writeJsonAtomic } from '../util/files.js';
import { checkImagePaths, imageCheckWarning, resolveImageFolder, type ImageCheck, type ImageFolderSource } from '../outputs/image-folder.js';
import { DATASET_INFO_FILE, LLAMAFACTORY_DATA_FILE, writeLlamaFactoryFiles } from '../outputs/llamafactory.js';
import { readManifest } from '../outputs/manifest.js';
import { trainLoraScript } from '../outputs/train-script.js';
import { toolVersion } from '../outputs/version.js';

export const TASKS_DATA_FILE = 'tasks.llava.json';
export const TASKS_SUMMARY_FILE = 'tasks.json';

export interface TaskFileOptions {
  /** LLaVA instruction data (a JSON list). */
  data: string;
  out: string;
  ratios?: TaskRatios;
  seed?: number;
  /** Let image turns make up for text-only turns (lib/srf/tasks.ts planTaskRatios). Default true. */
  compensateTextOnly?: boolean;
  /**
   * LLaVA's --image_folder for the data, written into train-lora.sh. Default (image-folder.ts): the one
   * srf-native recorded when it wrote the data file, else the data file's folder.
   */
  imageFolder?: string;
  /** The task prompts, as `run` takes them (`{A}`, `{Q}` placeholders); recorded in tasks.json. */
  templates?: PromptTemplateStrings;
  /** SRF round this step 1 belongs to. Default: the round after the run that wrote the data, else 0. */
  round?: number;
  /** Formats besides LLaVA (tasks.sharegpt.json, tasks.openai.jsonl). */
  formats?: readonly EmitFormat[];
  /**
   * The model family the generator is trained for (engine/families.ts FAMILY_NAMES; default
   * 'llava-1.5'): its trainer's format is written (ShareGPT with LLaMA-Factory's dataset_info.json for
   * all but LLaVA-1.5 and MobileVLM), and train-lora.sh, LLaVA-1.5's recipe, only where it fits.
   */
  family?: string;
  /** How tasks.openai.jsonl references images. Default base64 data URLs. */
  openaiImages?: OpenAiImages;
  /** Called with what the user must know (missing images, dropped samples). */
  onWarning?: (message: string) => void;
  /** Replace existing outputs. Default true. */
  overwrite?: boolean;
  onProgress?: (records: number) => void;
}

export interface TaskFileSummary {
  data: string;
  output: string;
  records: number;
  counts: Record<TaskName, number>;
  imageTurns: number;
  textOnlyTurns: number;
  skippedTurns: number;
  skippedByReason: Record<SkippedTurn['reason'], number>;
  plan: TaskPlan;
  seed: number;
  ratios: TaskRatios;
  round: number;
  /** The folder the data's image paths are relative to, and where that came from. */
  imageFolder: string;
  imageFolderFrom: ImageFolderSource;
  /** The prompts the records were built with (`{A}` / `{Q}` placeholders): give `run` the same. */
  templates: { iToQa: string; iaToQ: string; iqToA: string };
  /** Every file written, by format. */
  outputs: Record<string, string>;
  /** The family's trainer: what it reads and whether train-lora.sh was written. */
  trainer: TrainerRecord;
  imageCheck: ImageCheck;
  warnings: string[];
}

/** The turns of one record, with the record's real position in error messages. */
function turnsOf(value: unknown, index: number, file: string): { turns: SingleTurn[]; skipped: SkippedTurn[] } {
  readLlavaRecord(value, { index, file }); // throws DATA_INVALID naming record `index`
  return splitConversations([value], { file });
}

/** The round after the run that wrote `data` (its run.json beside it), else 0. */
async function roundAfter(data: string): Promise<number> {
  const manifest = await readManifest(path.dirname(data)).catch(() => null);
  const name = path.basename(data);
  const wrote = manifest && (manifest.outputs?.merged === name || manifest.outputs?.train?.llava === name);
  return wrote && Number.isInteger(manifest.round) ? manifest.round + 1 : 0;
}

export async function buildTaskFile(options: TaskFileOptions): Promise<TaskFileSummary> {
  const data = path.resolve(options.data);
  const out = path.resolve(options.out);
  const ratios = checkTaskRatios(options.ratios ?? DEFAULT_TASK_RATIOS);
  const seed = checkSeed(options.seed ?? 0, 'seed');
  const templates = templatesFromStrings(options.templates ?? {});
  const folder = await resolveImageFolder(data, options.imageFolder);
  const round = options.round ?? (await roundAfter(data));
  const family = options.family ?? 'llava-1.5';
  const trainer = familyTrainer(family);
  if (!trainer) throw invalidArgument(`one of ${FAMILY_NAMES.join(', ')}`, 'family', family);
  const formats = [...new Set([...(options.formats ?? []), ...(trainer.format === 'sharegpt' ? (['sharegpt'] as const) : [])])].filter((f) => f !== 'llava');
  await mkdir(out, { recursive: true });

  // pass 1: how many turns have an image
  let imageTurns = 0;
  let textOnlyTurns = 0;
  let index = 0;
  for await (const value of readJsonArray(data)) {
    for (const turn of turnsOf(value, index, data).turns) {
      if (turn.image === undefined) textOnlyTurns++;
      else imageTurns++;
    }
    index++;
    if (index % 50_000 === 0) options.onProgress?.(index);
  }
  const plan = planTaskRatios(ratios, imageTurns, textOnlyTurns, options.compensateTextOnly ?? true);

  // pass 2: draw in input order, exactly as buildMultiTaskData does, and write
  const random = createRandom(seed);
  const counts: Record<TaskName, number> = { iToQa: 0, iaToQ: 0, iqToA: 0 };
  const skippedByReason: Record<SkippedTurn['reason'], number> = { 'empty-question': 0, 'empty-answer': 0 };
  const output = path.join(out, TASKS_DATA_FILE);
  const writer = await RecordFileWriter.open(output, 'json-array', { overwrite: options.overwrite ?? true });
  const others: EmitWriter[] = [];
  const outputs: Record<string, string> = { llava: TASKS_DATA_FILE };
  index = 0;
  try {
    for (const format of formats) {
      const fileName = EMITTERS[format].fileName.replace(/^train\./, 'tasks.');
      others.push(await EMITTERS[format].open(out, { imageRoot: folder.folder, fileName, overwrite: options.overwrite ?? true, ...(options.openaiImages ?? DEFAULT_OPENAI_IMAGES) }));
      outputs[format] = fileName;
    }
    for await (const value of readJsonArray(data)) {
      const { turns, skipped } = turnsOf(value, index, data);
      for (const s of skipped) skippedByReason[s.reason]++;
      for (const turn of turns) {
        const task = drawTask(turn, plan, random);
        counts[task]++;
        const record = taskRecord(turn, task, templates);
        await writer.write(record);
        if (others.length > 0) {
          const sample = sampleFromLlavaRecord(record, { index, file: data }, { imageFolder: folder.folder });
          for (const other of others) await other.write(sample);
        }
      }
      index++;
      if (index % 50_000 === 0) options.onProgress?.(index);
    }
    await writer.close();
    for (const other of others) await other.close();
  } catch (error) {
    await writer.abort();
    for (const other of others) await other.abort().catch(() => {});
    throw error;
  }
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    options.onWarning?.(message);
  };
  for (const other of others) {
    const dropped = droppedWarning(other);
    if (dropped) warn(dropped);
  }
  const imageCheck = await checkImagePaths(output, folder.folder);
  const missing = imageCheckWarning(TASKS_DATA_FILE, imageCheck);
  if (missing) warn(missing);
  if (outputs.sharegpt) {
    await writeLlamaFactoryFiles(out, [{ name: `srf_round${round}_tasks`, fileName: outputs.sharegpt, mediaDir: folder.folder }]);
    outputs.datasetInfo = DATASET_INFO_FILE;
    outputs.llamaFactoryData = LLAMAFACTORY_DATA_FILE;
  }

  const summary: TaskFileSummary = {
    data,
    output,
    records: counts.iToQa + counts.iaToQ + counts.iqToA,
    counts,
    imageTurns,
    textOnlyTurns,
    skippedTurns: skippedByReason['empty-question'] + skippedByReason['empty-answer'],
    skippedByReason,
    plan,
    seed,
    ratios,
    round,
    imageFolder: folder.folder,
    imageFolderFrom: folder.from,
    templates: templateStrings(templates),
    outputs: { ...outputs, ...(trainer.trainScript ? { trainScript: 'train-lora.sh' } : {}) },
    trainer: { family, ...trainer },
    imageCheck,
    warnings,
  };
  await writeJsonAtomic(path.join(out, TASKS_SUMMARY_FILE), { tool: { name: 'srf-native', version: toolVersion() }, ...summary });
  const script = path.join(out, 'train-lora.sh');
  if (trainer.trainScript) {
    await writeFile(script, trainLoraScript({ purpose: 'tasks', data: output, imageFolder: folder.folder, round, source: { data, imageFolder: folder.folder } }));
    await chmod(script, 0o755);
  } else {
    // An earlier LLaVA-1.5 tasks run in this folder must not leave its recipe beside another family's data.
    await rm(script, { force: true });
  }
  return summary;
}
