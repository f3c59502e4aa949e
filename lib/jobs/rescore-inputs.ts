/**
 * `rescore`: a run whose inputs are an earlier run's scored triplets. Each keeps the earlier question
 * and answer (no I->QA); the run's model does the checks again, and selection picks among them as
 * judged now. This is how a newer round's model re-judges what an older one generated, and how
 * several rounds' triplets are judged by one model before `merge` selects over their union
 * (docs/METHOD.md, "Rounds").
 *
 * The images are the earlier run's files under its image root (for tar or parquet inputs, the images
 * it exported). The new run's image root is the earlier one unless `imageRoot` re-roots it (so that
 * runs on other folders can be merged with it); ids are made from the new relative paths as any
 * run makes them, so with the same root they are the earlier run's ids.
 */
import path from 'node:path';
import { SrfError } from '../errors.js';
import { JOURNAL_FILE, isScoredLine, readJournal } from '../outputs/journal.js';
import { readManifest } from '../outputs/manifest.js';
import { leavesFolder } from '../util/files.js';
import { countInputs, identifyImage, streamInputs, type InputImage, type InputSource, type StreamInputsOptions } from './inputs.js';

/** The earlier run in `folder` as a run's input source. */
export async function resolveRescoreSource(folder: string, options: { imageRoot?: string; cwd?: string } = {}): Promise<InputSource> {
  const cwd = options.cwd ?? process.cwd();
  const location = path.resolve(cwd, folder);
  const manifest = await readManifest(location);
  if (!manifest) throw new SrfError('FILE_NOT_FOUND', 'rescore: not the output folder of an srf-native run (no run.json)', { file: location });
  if (typeof manifest.imageRoot !== 'string' || manifest.imageRoot === '') throw new SrfError('DATA_INVALID', 'rescore: run.json names no image root', { file: path.join(location, 'run.json') });
  return {
    kind: 'rescore',
    spec: folder,
    location: path.join(location, JOURNAL_FILE),
    imageRoot: options.imageRoot === undefined ? manifest.imageRoot : path.resolve(cwd, options.imageRoot),
    earlierImageRoot: manifest.imageRoot,
  };
}

/** The images of any source, in order, sharded and limited: files and shards by streamInputs, an earlier run's triplets here. */
export function streamRunInputs(source: InputSource, options: StreamInputsOptions = {}): AsyncGenerator<InputImage> {
  return source.kind === 'rescore' ? streamEarlierTriplets(source, options) : streamInputs(source, options);
}

/** How many images streamRunInputs yields. */
export async function countRunInputs(source: InputSource, options: StreamInputsOptions = {}): Promise<number> {
  if (source.kind !== 'rescore') return countInputs(source, options);
  let count = 0;
  for await (const _ of streamEarlierTriplets(source, options)) count++;
  return count;
}

/** The earlier journal's scored lines as inputs with their (Q, A) given; rejected and error lines have none and are left out. */
async function* streamEarlierTriplets(source: InputSource, options: StreamInputsOptions): AsyncGenerator<InputImage> {
  const earlierRoot = source.earlierImageRoot as string;
  let index = 0;
  for await (const line of readJournal(source.location)) {
    if (!isScoredLine(line)) continue;
    const absolute = path.resolve(earlierRoot, line.image);
    const relative = path.relative(source.imageRoot, absolute);
    const image = relative.split(path.sep).join('/');
    const identity = identifyImage(image, options.idHexDigits);
    if (options.shard && options.shard.count > 1 && identity.shardKey % options.shard.count !== options.shard.index) continue;
    const item: InputImage = {
      id: identity.id,
      path: absolute,
      image,
      index,
      key: identity.key,
      ...(line.metadata ? { metadata: line.metadata } : {}),
      given: { question: line.question, answer: line.answer, ...(line.seed !== undefined ? { seed: line.seed } : {}), ...(line.truncated ? { truncation: line.truncated } : {}) },
    };
    if (leavesFolder(relative)) {
      item.problem = new SrfError('INVALID_ARGUMENT', `the image is not inside the image root ${source.imageRoot} (set --image-root to a folder that holds both runs' images)`, { file: absolute });
    }
    yield item;
    index++;
    if (options.limit !== undefined && index >= options.limit) return;
  }
}
