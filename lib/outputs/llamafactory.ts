/**
 * What LLaMA-Factory needs to read the ShareGPT files of an output folder: their `dataset_info.json`
 * entries (file name, `formatting: sharegpt`, columns and tags), and `llamafactory-data.yaml`, the data
 * arguments of a training run: `dataset_dir`, `dataset` and `media_dir`.
 *
 * Why media_dir is not in dataset_info.json: in LLaMA-Factory it is a training argument
 * (hparams/data_args.py `media_dir`, default `dataset_dir`), joined to every relative image path
 * (data/converter.py `_find_medias`); dataset_info.json entries have no such key (data/parser.py
 * `DatasetAttr.join` reads file_name, formatting, columns, tags and a few others and ignores the rest).
 * A run with the merged file uses its image root as media_dir.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { shareGptDatasetInfo } from '../emit/sharegpt.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/files.js';

export const DATASET_INFO_FILE = 'dataset_info.json';
export const LLAMAFACTORY_DATA_FILE = 'llamafactory-data.yaml';

export interface LlamaFactoryDataset {
  /** The dataset's name in dataset_info.json (LLaMA-Factory's `dataset:`). */
  name: string;
  /** The ShareGPT file, in `out`. */
  fileName: string;
  /** The folder its image paths are relative to: media_dir for a run on it. */
  mediaDir: string;
}

/**
 * Adds the datasets to `out/dataset_info.json` (entries of other names are kept) and writes
 * `out/llamafactory-data.yaml` for the first one (the one to train on).
 */
export async function writeLlamaFactoryFiles(out: string, datasets: LlamaFactoryDataset[]): Promise<void> {
  const first = datasets[0];
  if (!first) return;
  const infoFile = path.join(out, DATASET_INFO_FILE);
  let info: Record<string, unknown> = {};
  try {
    const existing = JSON.parse(await readFile(infoFile, 'utf8')) as unknown;
    if (existing && typeof existing === 'object' && !Array.isArray(existing)) info = existing as Record<string, unknown>;
  } catch {
    // none yet, or not ours to read: start afresh
  }
  for (const dataset of datasets) info[dataset.name] = shareGptDatasetInfo(dataset.fileName);
  await writeJsonAtomic(infoFile, info);
  const yaml = (value: string) => JSON.stringify(value); // a JSON string is a valid YAML scalar
  const lines = [
    '# LLaMA-Factory data arguments for the ShareGPT data in this folder (written by srf-native).',
    '# Add them to a LLaMA-Factory training config. media_dir is a training argument, not a',
    '# dataset_info.json key: the image paths in the file are relative to it.',
    `dataset_dir: ${yaml(path.resolve(out))}`,
    `dataset: ${first.name}`,
    `media_dir: ${yaml(path.resolve(first.mediaDir))}`,
  ];
  for (const other of datasets.slice(1)) lines.push(`# ${other.name} (${other.fileName}): media_dir ${yaml(path.resolve(other.mediaDir))}`);
  await writeFileAtomic(path.join(out, LLAMAFACTORY_DATA_FILE), `${lines.join('\n')}\n`);
}
