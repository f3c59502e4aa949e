/**
 * One rule for the folder a LLaVA data file's image paths are relative to (LLaVA's --image_folder),
 * the same for `run --merge-with` and `tasks --data`, so that a file srf-native wrote in round k is
 * read with the right folder in round k+1:
 *
 *  1. the folder given on the command line;
 *  2. else the folder srf-native recorded when it wrote the file (run.json or tasks.json beside it);
 *  3. else the data file's own folder (LLaVA's layout: playground/data/llava_v1_5_mix665k.json with
 *     image paths like coco/train2017/... under playground/data).
 *
 * And one check: every image path in emitted data is looked up under the folder the training script
 * passes; the ones that are not there are counted and named.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { readJsonArray } from '../util/files.js';

export type ImageFolderSource = 'given' | 'recorded' | 'data-folder';

export interface ResolvedImageFolder {
  folder: string;
  from: ImageFolderSource;
}

async function readJson(file: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The image folder srf-native recorded for a data file it wrote, if it wrote it. */
async function recordedImageFolder(dataFile: string): Promise<string | undefined> {
  const dir = path.dirname(dataFile);
  const name = path.basename(dataFile);
  const run = await readJson(path.join(dir, 'run.json'));
  const outputs = run?.outputs as { merged?: string; mergedImageRoot?: string; train?: Record<string, string> } | undefined;
  if (outputs?.merged === name && typeof outputs.mergedImageRoot === 'string') return outputs.mergedImageRoot;
  if (outputs?.train?.llava === name && typeof run?.imageRoot === 'string') return run.imageRoot;
  const tasks = await readJson(path.join(dir, 'tasks.json'));
  if (tasks && typeof tasks.output === 'string' && path.resolve(tasks.output) === dataFile && typeof tasks.imageFolder === 'string') return tasks.imageFolder;
  return undefined;
}

export async function resolveImageFolder(dataFile: string, given?: string): Promise<ResolvedImageFolder> {
  if (given !== undefined) return { folder: path.resolve(given), from: 'given' };
  const file = path.resolve(dataFile);
  const recorded = await recordedImageFolder(file);
  if (recorded !== undefined) return { folder: path.resolve(recorded), from: 'recorded' };
  return { folder: path.dirname(file), from: 'data-folder' };
}

export interface ImageCheck {
  /** The folder the paths were looked up under. */
  folder: string;
  /** Distinct image paths in the file. */
  images: number;
  missing: number;
  /** The first missing paths, as written in the file. */
  examples: string[];
}

/**
 * Looks every distinct `image` of an emitted LLaVA JSON file up under `folder` (LLaVA joins the two
 * with os.path.join). Streams the file; stats run a few at a time.
 */
export async function checkImagePaths(dataFile: string, folder: string, maxExamples = 5): Promise<ImageCheck> {
  const images = new Set<string>();
  for await (const record of readJsonArray(dataFile)) {
    const image = (record as { image?: unknown }).image;
    if (typeof image === 'string') images.add(image);
  }
  const list = [...images];
  const missing: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const image = list[next++] as string;
      const found = await stat(path.resolve(folder, image)).then(
        (s) => s.isFile(),
        () => false,
      );
      if (!found) missing.push(image);
    }
  };
  await Promise.all(Array.from({ length: Math.min(32, list.length) }, worker));
  missing.sort();
  return { folder, images: list.length, missing: missing.length, examples: missing.slice(0, maxExamples) };
}

/** The warning for a check with missing images, or undefined. */
export function imageCheckWarning(file: string, check: ImageCheck): string | undefined {
  if (check.missing === 0) return undefined;
  return `${check.missing} of ${check.images} image paths in ${file} are not under ${check.folder} (the trainer's image folder), e.g. ${check.examples.join(', ')}`;
}
