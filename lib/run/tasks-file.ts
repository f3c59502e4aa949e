/**
 * Step 1 over a file: llava_v1_5_mix665k.json (about 1 GB, more than one V8 string can hold) in,
 * the multi-task LLaVA JSON out, streamed in two passes (count turns, then draw and write), so memory
 * stays flat. The draw is the one of lib/srf/tasks.ts buildMultiTaskData — same seed, same data — and
 * the records are made by its taskRecord.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RecordFileWriter } from '../emit/record-file.js';
import { checkSeed } from '../srf/check.js';
import { readLlavaRecord } from '../srf/llava-data.js';
import { resolveTemplates, type PromptTemplates } from '../srf/prompts.js';
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
import { readJsonArray, writeJsonAtomic } from './files.js';
import { trainLoraScript } from './train-script.js';
import { toolVersion } from './version.js';

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
  /** LLaVA's --image_folder for the data, written into train-lora.sh. Default: the data file's folder. */
  imageFolder?: string;
  templates?: Partial<PromptTemplates>;
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
}

/** The turns of one record, with the record's real position in error messages. */
function turnsOf(value: unknown, index: number, file: string): { turns: SingleTurn[]; skipped: SkippedTurn[] } {
  readLlavaRecord(value, { index, file }); // throws DATA_INVALID naming record `index`
  return splitConversations([value], { file });
}

export async function buildTaskFile(options: TaskFileOptions): Promise<TaskFileSummary> {
  const data = path.resolve(options.data);
  const out = path.resolve(options.out);
  const ratios = checkTaskRatios(options.ratios ?? DEFAULT_TASK_RATIOS);
  const seed = checkSeed(options.seed ?? 0, 'seed');
  const templates = resolveTemplates(options.templates ?? {});
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
  index = 0;
  try {
    for await (const value of readJsonArray(data)) {
      const { turns, skipped } = turnsOf(value, index, data);
      for (const s of skipped) skippedByReason[s.reason]++;
      for (const turn of turns) {
        const task = drawTask(turn, plan, random);
        counts[task]++;
        await writer.write(taskRecord(turn, task, templates));
      }
      index++;
      if (index % 50_000 === 0) options.onProgress?.(index);
    }
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
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
  };
  await writeJsonAtomic(path.join(out, TASKS_SUMMARY_FILE), { tool: { name: 'srf-native', version: toolVersion() }, ...summary });
  const script = path.join(out, 'train-lora.sh');
  await writeFile(script, trainLoraScript({ purpose: 'tasks', data: output, imageFolder: path.resolve(options.imageFolder ?? path.dirname(data)) }));
  await chmod(script, 0o755);
  return summary;
}
