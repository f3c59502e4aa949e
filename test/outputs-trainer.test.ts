// Which training files a folder gets is the family's trait (lib/engine/families.ts `trainScript`,
// recorded in run.json's outputs.trainer), carried through run, select and merge; run.json files
// written before the trait was recorded (no trainer at all, or a trainer without trainScript) still
// get what their family trains with. No model is loaded: the journals are written by hand.
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { mergeRuns } from '../lib/jobs/merge.js';
import { reselectRun } from '../lib/jobs/reselect.js';
import { finalizeOutputs } from '../lib/outputs/finalize.js';
import { writeManifest } from '../lib/outputs/manifest.js';
import { finishedManifest } from './helpers/manifest.js';
import { writeImages } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

const exists = (file: string) => access(file).then(() => true, () => false);

// One image folder for every output folder: merge takes folders that share their image root.
const images = join(await tempDir(), 'images');
await writeImages(images, ['one.png', 'two.png']);

/** An output folder with two scored lines and a run.json whose outputs.trainer is `trainer` (left out when undefined). */
async function folder(trainer: Record<string, unknown> | undefined, ids = ['a', 'b'], filter?: string): Promise<string> {
  const out = await tempDir();
  const lines = ids.map((id, i) => ({ id, image: i === 0 ? 'one.png' : 'two.png', status: 'scored', question: 'What is it?', answer: 'a cat', questionPrime: 'What is this?', answerPrime: 'a cat', type: 'short_text', simQ: 0.9, simA: 0.8, score: 0.85 - i * 0.1, paperFaithful: true, round: 0 }));
  await writeFile(join(out, 'triplets.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const manifest = finishedManifest({ round: 0, imageRoot: images, outputs: { journal: 'triplets.jsonl', train: {}, ...(trainer ? { trainer: trainer as never } : {}) }, ...(filter ? { filter: { name: filter } as never } : {}) });
  await writeManifest(out, manifest);
  return out;
}

const CASES = [
  { what: 'LLaVA-1.5, recorded', trainer: { family: 'llava-1.5', format: 'llava', trainScript: true }, script: true, sharegpt: false },
  { what: 'MobileVLM, recorded', trainer: { family: 'mobilevlm', format: 'llava', trainScript: false }, script: false, sharegpt: false },
  { what: 'Qwen2.5-VL, recorded', trainer: { family: 'qwen2.5-vl', format: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'qwen2_vl' }, script: false, sharegpt: true },
  { what: 'an older run.json without a trainer (LLaVA-1.5)', trainer: undefined, script: true, sharegpt: false },
  { what: 'an older LLaVA-1.5 run.json without trainScript', trainer: { family: 'llava-1.5', format: 'llava' }, script: true, sharegpt: false },
  { what: 'an older MobileVLM run.json without trainScript', trainer: { family: 'mobilevlm', format: 'llava' }, script: false, sharegpt: false },
  { what: 'an older Gemma 3 run.json without trainScript', trainer: { family: 'gemma3', format: 'sharegpt', llamaFactoryTemplate: 'gemma3' }, script: false, sharegpt: true },
] as const;

for (const c of CASES) {
  t.test(`select and merge: ${c.what}`, async (t) => {
    const out = await folder(c.trainer);
    await reselectRun({ out, keepTop: 1, report: false });
    t.equal(await exists(join(out, 'train-lora.sh')), c.script, `select: train-lora.sh ${c.script ? 'written' : 'not written'}`);
    t.equal(await exists(join(out, 'train.sharegpt.json')), c.sharegpt, `select: ShareGPT ${c.sharegpt ? 'written' : 'not written'}`);
    const selected = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
    t.equal(selected.outputs.trainer.trainScript, c.script, 'run.json now records the trait');

    const second = await folder(c.trainer, ['c', 'd']);
    const merged = join(await tempDir(), 'merged');
    await mergeRuns({ inputs: [out, second], out: merged, keepTop: 1, report: false });
    t.equal(await exists(join(merged, 'train-lora.sh')), c.script, `merge: train-lora.sh ${c.script ? 'written' : 'not written'}`);
    t.equal(await exists(join(merged, 'train.sharegpt.json')), c.sharegpt, `merge: ShareGPT ${c.sharegpt ? 'written' : 'not written'}`);
    const manifest = JSON.parse(await readFile(join(merged, 'run.json'), 'utf8'));
    t.equal(manifest.outputs.trainer.family, c.trainer?.family ?? 'llava-1.5', 'the merged run.json names the family');
  });
}

t.test('merge refuses folders of different families, naming both', async (t) => {
  const llava = await folder({ family: 'llava-1.5', format: 'llava', trainScript: true });
  const qwen = await folder({ family: 'qwen2.5-vl', format: 'sharegpt', trainScript: false }, ['c', 'd']);
  await t.rejects(mergeRuns({ inputs: [llava, qwen], out: join(await tempDir(), 'merged'), report: false }), { code: 'DATA_INVALID', message: /qwen2\.5-vl model .*llava-1\.5 one/ });
});

t.test('merge refuses folders judged by different filters: their scores rank differently', async (t) => {
  const llava = { family: 'llava-1.5', format: 'llava', trainScript: true };
  const refined = await folder(llava, ['a', 'b'], 'refined');
  const agreement = await folder(llava, ['c', 'd'], 'refined-agreement');
  await t.rejects(mergeRuns({ inputs: [refined, agreement], out: join(await tempDir(), 'merged'), report: false }), { code: 'DATA_INVALID', message: /--filter refined-agreement but .* --filter refined;.*--rescore/ });
  await t.rejects(mergeRuns({ inputs: [await folder(llava, ['e', 'f']), agreement], out: join(await tempDir(), 'merged'), report: false }), { code: 'DATA_INVALID', message: /--filter paper/ }, 'a folder that names none was judged by the paper\'s');
  const summary = await mergeRuns({ inputs: [agreement, await folder(llava, ['g', 'h'], 'refined-agreement')], out: join(await tempDir(), 'merged'), keepTop: 1, report: false });
  t.equal(summary.manifest.filter?.name, 'refined-agreement', 'the same filter merges, and the union says which');
});

t.test('finalize reads the trait, not the family name', async (t) => {
  const out = await folder(undefined);
  const imageRoot = images;
  await finalizeOutputs({ out, imageRoot, keepTop: 1, report: false, trainer: { family: 'llava-1.5', format: 'llava', trainScript: false } });
  t.notOk(await exists(join(out, 'train-lora.sh')), 'trainScript false: none, whatever the name');
  await finalizeOutputs({ out, imageRoot, keepTop: 1, report: false, trainer: { family: 'a-future-family', format: 'llava', trainScript: true } });
  t.ok(await exists(join(out, 'train-lora.sh')), 'trainScript true: written');
});
