// Runs the damaged-file cases of model-file-sweep.ts in order, printing `START i` before and
// `END i <result>` after each, so the parent can tell which case killed the process.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Embedder, VisionModel, isSrfError } from '../../lib/index.js';
import { damagedCopy, type SweepCase, type SweepFiles } from './model-file-sweep.js';

const { cases, files, workDir } = JSON.parse(process.env.SRF_SWEEP as string) as { cases: SweepCase[]; files: SweepFiles; workDir: string };

async function runCase(c: SweepCase, path: string): Promise<string> {
  if (c.kind === 'embedder') {
    await using embedder = await Embedder.open({ model: path, threads: 1 });
    await embedder.embed(['a red circle']);
    return 'reply';
  }
  const model = c.kind === 'model' ? path : files.model;
  const mmproj = c.kind === 'mmproj' ? path : files.mmproj;
  await using vision = await VisionModel.open({ model, mmproj, parallel: 1, threads: 1 });
  await vision.questionToAnswer([{ image: files.image, question: 'What color is the circle?' }], { sampling: { maxTokens: 4 } });
  return 'reply';
}

for (const [i, c] of cases.entries()) {
  const path = join(workDir, `damaged-${c.kind}.gguf`);
  await writeFile(path, await damagedCopy(files[c.kind], c.tensor, c.damage));
  process.stdout.write(`START ${i}\n`);
  let result: string;
  try {
    result = await runCase(c, path);
  } catch (error) {
    result = isSrfError(error) ? error.code : `uncoded ${String(error).slice(0, 200).replace(/\n/g, ' ')}`;
  }
  process.stdout.write(`END ${i} ${result}\n`);
}
