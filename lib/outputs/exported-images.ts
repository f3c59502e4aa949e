/**
 * `OUT/images/`: where a run over tar shards writes its images for the trainer, one file per sample
 * (`<shard>/<key>.<ext>`, the sample's original bytes), the image root its training files reference
 * (LLaVA's `--image_folder`, LLaMA-Factory's `media_dir`). Written once, atomically, as each image is
 * journaled; with `--export-images kept` the ones the run's selection did not keep are removed at its end.
 */
import { access, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';
import { JOURNAL_FILE, readJournal } from './journal.js';

export const EXPORTED_IMAGES_FOLDER = 'images';

/** Writes `bytes` to `root/image` unless it is there already (a resumed run, a sample seen twice). */
export async function exportImage(root: string, image: string, bytes: Uint8Array): Promise<void> {
  const file = path.join(root, image);
  if (await access(file).then(() => true, () => false)) return;
  await mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, bytes);
}

/** Removes the exported images of the journal's lines that are not kept; returns how many. */
export async function pruneExportedImages(out: string, root: string): Promise<number> {
  let removed = 0;
  for await (const line of readJournal(path.join(out, JOURNAL_FILE))) {
    if (line.kept) continue;
    const file = path.join(root, line.image);
    if (await access(file).then(() => true, () => false)) {
      await rm(file, { force: true });
      removed++;
    }
  }
  return removed;
}
