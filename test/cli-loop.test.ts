/**
 * The self-refinement loop through the CLI, two rounds, on the tiny generated models: tasks (step 1)
 * -> run --merge-with (steps 2 and 3's data) -> tasks on the merged data -> run --round 1. Training is
 * outside srf-native; the fixture LoRA stands in for the adapter train-lora.sh would make (a round trip
 * through a really trained model needs the world model of issue 11). What is checked: every image path
 * of every emitted data file exists under the folder its train-lora.sh passes, in both rounds; the
 * prompts agree between tasks and run and are recorded; the printed next commands carry tasks,
 * --merge-with and the image folder; step 3 without original data is warned about everywhere.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import t from 'tap';
import { validateLlavaDataset } from '../lib/emit/llava.js';
import { writeFixtures } from '../fixtures/gguf/fixtures.js';
import type { RunManifest } from '../lib/outputs/manifest.js';
import { FAST_CLI_ARGS, runCli, writeImages } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

const readJson = async <T = unknown>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;

/** The DEFAULT_IMAGE_FOLDER / DEFAULT_DATA a train-lora.sh passes to LLaVA's trainer. */
async function scriptPaths(file: string): Promise<{ data: string; imageFolder: string }> {
  const script = await readFile(file, 'utf8');
  const value = (name: string) => (new RegExp(`^${name}='([^']*)'$`, 'm').exec(script)?.[1] ?? '').replace(/'\\''/g, "'");
  return { data: value('DEFAULT_DATA'), imageFolder: value('DEFAULT_IMAGE_FOLDER') };
}

/** Every `image` of a LLaVA file, looked up under `folder` as LLaVA's loader does (os.path.join). */
async function missingImages(dataFile: string, folder: string): Promise<{ images: number; missing: string[] }> {
  const records = await readJson<{ image?: string }[]>(dataFile);
  const images = records.map((r) => r.image).filter((i): i is string => typeof i === 'string');
  return { images: images.length, missing: images.filter((i) => !existsSync(resolve(folder, i))) };
}

async function world() {
  const dir = await tempDir();
  const models = await writeFixtures(join(dir, 'models'), { llava: 'tiny', lora: true, bert: 'tiny', seed: 11 });
  // The original instruction data, LLaVA's layout: the JSON beside the image folders it names.
  const data = join(dir, 'playground', 'data');
  await writeImages(data, ['coco/a.png', 'coco/b.jpg', 'vg/c.png']);
  const long = 'The image shows a quiet street in the morning. A red bus waits at the stop while two people cross.\n\nOn the left, a bakery has opened its doors, and a cyclist passes by in front of it.';
  const original = [
    { id: 'o1', image: 'coco/a.png', conversations: [{ from: 'human', value: '<image>\nWhat colour is it?\nAnswer the question using a single word or phrase.' }, { from: 'gpt', value: 'Red' }, { from: 'human', value: 'Is it big?' }, { from: 'gpt', value: 'No' }] },
    { id: 'o2', image: 'coco/b.jpg', conversations: [{ from: 'human', value: '<image>\nDescribe the image in detail.' }, { from: 'gpt', value: long }] },
    { id: 'o3', image: 'vg/c.png', conversations: [{ from: 'human', value: '<image>\nHow many dots are there?' }, { from: 'gpt', value: 'Two.' }] },
    { id: 'o4', conversations: [{ from: 'human', value: 'What is two plus two?' }, { from: 'gpt', value: 'Four.' }] },
  ];
  const originalFile = join(data, 'original.llava.json');
  await writeFile(originalFile, JSON.stringify(original));
  await writeImages(join(dir, 'unlabeled', 'round0'), ['u0.png', 'u1.png', 'sub/u2.jpg', 'u3.png']);
  await writeImages(join(dir, 'unlabeled', 'round1'), ['v0.png', 'v1.jpg', 'v2.png']);
  return { dir, models, data, originalFile };
}

const PROMPT_QA = 'Ask one question about the picture and answer it.\\nQuestion: <question>\\nAnswer: <answer>';

/**
 * The tiny random-weight models never end a sentence within the fast budgets, so which replies survive
 * as "truncated" rejections depends on the kernels' rounding (the prebuilt CPU variant rejected all
 * four images of round 0 where the source build kept some). This test is about the loop's files, not
 * the replies: keep cut replies as they stopped (still marked), as the benchmark does.
 */
const KEEP_CUT_REPLIES = ['--truncated', 'keep'];
// The paper's filter: the tiny random model's scores never reach the refined filter's floor, and what
// this test follows is the loop's files and paths across rounds, not the filter.
const PAPER_FILTER = ['--filter', 'paper'];

t.test('two rounds: tasks -> run --merge-with -> tasks on the merged data -> run --round 1', async (t) => {
  const { dir, models, data, originalFile } = await world();
  const modelArgs = ['--model', models.model, '--mmproj', models.mmproj, '--lora', models.lora as string, '--embedder', models.embedder as string];

  // ---- round 0, step 1 ------------------------------------------------------------------------
  const tasks0 = join(dir, 'round0-tasks');
  const step1 = await runCli(['tasks', '--data', originalFile, '--out', tasks0, '--prompt-qa', PROMPT_QA, '--format', 'sharegpt,openai']);
  t.equal(step1.code, 0, step1.stderr);
  const tasksJson = await readJson<{ imageFolder: string; imageFolderFrom: string; round: number; templates: { iToQa: string }; imageCheck: { missing: number } }>(join(tasks0, 'tasks.json'));
  t.equal(tasksJson.imageFolder, data, 'image folder: the data file\'s own folder (LLaVA\'s layout)');
  t.equal(tasksJson.imageFolderFrom, 'data-folder');
  t.equal(tasksJson.round, 0);
  t.equal(tasksJson.templates.iToQa, PROMPT_QA.replace(/\\n/g, '\n'), 'tasks records the prompt it taught');
  t.equal(tasksJson.imageCheck.missing, 0);
  const tasksRecords = await readJson<{ conversations: { value: string }[]; srf: { task: string } }[]>(join(tasks0, 'tasks.llava.json'));
  t.ok(tasksRecords.filter((r) => r.srf.task === 'iToQa').every((r) => r.conversations[0]?.value === `<image>\n${PROMPT_QA.replace(/\\n/g, '\n')}`), 'I->QA records carry the given prompt');
  const script0 = await scriptPaths(join(tasks0, 'train-lora.sh'));
  t.equal(script0.imageFolder, data);
  t.same((await missingImages(join(tasks0, 'tasks.llava.json'), script0.imageFolder)).missing, [], 'step-1 data: every image under the folder its script passes');
  t.equal((await readJson<unknown[]>(join(tasks0, 'tasks.sharegpt.json'))).length, tasksRecords.length, 'step-1 data in the chosen formats');
  t.ok(existsSync(join(tasks0, 'tasks.openai.jsonl')));
  t.ok((await readJson<Record<string, unknown>>(join(tasks0, 'dataset_info.json'))).srf_round0_tasks, 'LLaMA-Factory entry');
  t.match(await readFile(join(tasks0, 'llamafactory-data.yaml'), 'utf8'), new RegExp(`^media_dir: ${JSON.stringify(data).replace(/[/.]/g, '\\$&')}$`, 'm'));
  t.match(step1.stdout, /--merge-with .*original\.llava\.json --merge-image-folder /, 'tasks prints the run that follows, with --merge-with');

  // ---- round 0, step 2 (the fixture LoRA stands in for the trained step-1 adapter) ---------------
  const round0 = join(dir, 'round0');
  const run0 = await runCli(['run', ...modelArgs, '--images', join(dir, 'unlabeled', 'round0'), '--merge-with', originalFile, '--prompt-qa', PROMPT_QA, '--keep-top', '1', '--format', 'sharegpt', '--out', round0, ...FAST_CLI_ARGS, ...KEEP_CUT_REPLIES, ...PAPER_FILTER]);
  t.equal(run0.code, 0, run0.stderr);
  const manifest0 = await readJson<RunManifest>(join(round0, 'run.json'));
  t.equal((manifest0.generation as { templates: { iToQa: string } }).templates.iToQa, tasksJson.templates.iToQa, 'run.json records the same prompt');
  t.equal(manifest0.outputs.mergedImageRoot, dir, 'original and new images re-based onto their common folder');
  const merged0 = join(round0, 'train.merged.llava.json');
  const script1 = await scriptPaths(join(round0, 'train-lora.sh'));
  t.equal(script1.data, merged0, 'step 3 trains on original + kept');
  t.equal(script1.imageFolder, manifest0.outputs.mergedImageRoot);
  const check0 = await missingImages(merged0, script1.imageFolder);
  t.same(check0.missing, [], `round 0 merged data: all ${check0.images} images under the folder train-lora.sh passes`);
  t.same(manifest0.outputs.imageChecks?.['train.merged.llava.json']?.missing, 0, 'and run.json says so');
  t.equal(validateLlavaDataset(await readJson(merged0)).ok, true);
  const kept0 = manifest0.counts?.kept ?? 0;
  t.ok(kept0 > 0, `round 0 kept ${kept0}`);
  t.notOk(manifest0.outputs.warnings?.some((w) => /no original data/.test(w)), 'no synthetic-only warning with --merge-with');
  // the printed next commands: step 1 again on the merged data, with its image folder, then run with --merge-with
  t.match(run0.stdout, new RegExp(`srf-native tasks --data \\S*round0/train\\.merged\\.llava\\.json --image-folder \\S+ --round 1 --prompt-qa`));
  t.match(run0.stdout, /srf-native run .*--lora \S*round0-round1-tasks\/checkpoints\//);
  t.match(run0.stdout, /--merge-with \S*round0\/train\.merged\.llava\.json --merge-image-folder \S+ --round 1/);

  // ---- round 1, step 1 on the merged data: folder and round from what srf-native recorded -------------
  const tasks1 = join(dir, 'round1-tasks');
  const step1b = await runCli(['tasks', '--data', merged0, '--out', tasks1, '--prompt-qa', PROMPT_QA]);
  t.equal(step1b.code, 0, step1b.stderr);
  const tasksJson1 = await readJson<{ imageFolder: string; imageFolderFrom: string; round: number }>(join(tasks1, 'tasks.json'));
  t.same([tasksJson1.imageFolder, tasksJson1.imageFolderFrom, tasksJson1.round], [manifest0.outputs.mergedImageRoot, 'recorded', 1]);
  const script2 = await scriptPaths(join(tasks1, 'train-lora.sh'));
  t.same((await missingImages(join(tasks1, 'tasks.llava.json'), script2.imageFolder)).missing, [], 'round 1 step-1 data: every image under its folder');
  t.match(await readFile(join(tasks1, 'train-lora.sh'), 'utf8'), /round1-multitask-lora/);

  // ---- round 1, step 2, merging round 0's merged data (no --merge-image-folder: the recorded one) ----
  const round1 = join(dir, 'round1');
  const run1 = await runCli(['run', ...modelArgs, '--images', join(dir, 'unlabeled', 'round1'), '--merge-with', merged0, '--prompt-qa', PROMPT_QA, '--round', '1', '--keep-top', '1', '--out', round1, ...FAST_CLI_ARGS, ...KEEP_CUT_REPLIES, ...PAPER_FILTER]);
  t.equal(run1.code, 0, run1.stderr);
  const manifest1 = await readJson<RunManifest>(join(round1, 'run.json'));
  const merged1 = join(round1, 'train.merged.llava.json');
  const script3 = await scriptPaths(join(round1, 'train-lora.sh'));
  const check1 = await missingImages(merged1, script3.imageFolder);
  t.same(check1.missing, [], `round 1 merged data: all ${check1.images} images (originals, round 0 and round 1 triplets) under the folder train-lora.sh passes`);
  const ids = (await readJson<{ id: string | number }[]>(merged1)).map((r) => String(r.id));
  t.ok(['o1', 'o2', 'o3', 'o4'].every((id) => ids.includes(id)), 'the original records');
  t.equal(ids.filter((id) => id.startsWith('srf-r0-')).length, kept0, 'round 0\'s kept triplets');
  t.equal(ids.filter((id) => id.startsWith('srf-r1-')).length, manifest1.counts?.kept, 'round 1\'s kept triplets');
  t.equal(manifest1.round, 1);
});

t.test('step 3 without original data is warned about in the log, run.json, the report and the next commands', async (t) => {
  const { dir, models } = await world();
  const out = join(dir, 'alone');
  await mkdir(out);
  const result = await runCli(['run', '--model', models.model, '--mmproj', models.mmproj, '--embedder', models.embedder as string, '--images', join(dir, 'unlabeled', 'round1'), '--keep-top', '1', '--out', out, ...FAST_CLI_ARGS]);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stderr, /warning: step 3 has no original data/);
  const manifest = await readJson<RunManifest>(join(out, 'run.json'));
  t.ok(manifest.outputs.warnings?.some((w) => /step 3 has no original data.*--merge-with/.test(w)), 'run.json');
  t.match(await readFile(join(out, 'report.html'), 'utf8'), /step 3 has no original data/, 'report.html');
  t.match(await readFile(join(out, 'train-lora.sh'), 'utf8'), /WARNING: this data holds the kept synthetic triplets only/, 'train-lora.sh');
  t.match(result.stdout, /WARNING: no --merge-with/);
  t.match(result.stdout, /--merge-with ORIGINAL_PLUS_KEPT\.json/);
});

t.test('a reply the token budget stops is cut back to a full sentence and marked in triplets.jsonl', async (t) => {
  const { dir, models } = await world();
  const out = join(dir, 'short-budget');
  // The tiny model writes about one character per token: 100 tokens end most answers mid-way.
  const args = ['run', '--model', models.model, '--mmproj', models.mmproj, '--embedder', models.embedder as string, '--images', join(dir, 'unlabeled', 'round0'), '--max-question-chars', '8', '--max-options', '0', '--max-answer-chars', '400', '--max-answer-lines', '1', '--max-tokens-qa', '100', '--max-tokens-check', '16', '--parallel', '4', '--threads', '1', '--progress-interval', '0'];
  const result = await runCli([...args, '--out', out]);
  t.equal(result.code, 0, result.stderr);
  const journalLines = async (folder: string) =>
    (await readFile(join(folder, 'triplets.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { status: string; rejected?: string; answer?: string; truncated?: { by: string; removedChars: number } });
  const lines = await journalLines(out);
  const cut = lines.filter((l) => l.truncated !== undefined || l.rejected === 'truncated');
  t.ok(cut.length > 0, `${cut.length} of ${lines.length} replies stopped by the 100-token budget, and recorded`);
  for (const line of lines.filter((l) => l.truncated)) {
    t.equal(line.truncated?.by, 'max-tokens');
    t.match(line.answer, /[.!?。！？]["'”’)\]]*$/, 'the kept answer ends on a full sentence');
  }
  t.ok(lines.filter((l) => l.rejected === 'truncated').every((l) => l.status === 'rejected'), 'nothing whole left: rejected as truncated');

  // --truncated keep: the same replies, kept as they stopped; a folder written with the default refuses it.
  const refused = await runCli([...args, '--out', out, '--truncated', 'keep']);
  t.not(refused.code, 0, 'resuming with the other setting is refused');
  t.match(refused.stderr, /OUTPUT_CONFLICT[\s\S]*truncatedAnswers/);
  const keptOut = join(dir, 'short-budget-keep');
  const kept = await runCli([...args, '--out', keptOut, '--truncated', 'keep']);
  t.equal(kept.code, 0, kept.stderr);
  const keptLines = await journalLines(keptOut);
  t.equal(keptLines.filter((l) => l.rejected === 'truncated').length, 0, 'none rejected as truncated');
  const stopped = keptLines.filter((l) => l.truncated);
  t.equal(stopped.length, cut.length, 'the same replies stopped');
  t.ok(stopped.every((l) => l.truncated?.by === 'max-tokens' && l.truncated.removedChars === 0), 'marked, nothing removed');
  t.ok(stopped.some((l) => !/[.!?。！？]["'”’)\]]*$/.test(l.answer ?? '')), 'answers kept as they stopped, mid-sentence');
});
