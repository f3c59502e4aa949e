// `srf-native run` end to end on a non-LLaVA family (the tiny Qwen2.5-VL pair): non-square images,
// one journal line per image, resumable; LLaMA-Factory ShareGPT data and its command instead of
// train-lora.sh; `info --model --mmproj` names the family.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { writeFamilyPair } from '../fixtures/gguf/family-fixtures.js';
import { runCli, writeImages } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';
import { readJournal } from './helpers/tiny-run.js';

const dir = await tempDir();
const pair = await writeFamilyPair(join(dir, 'models'), 'qwen2.5-vl', { seed: 4 });
// writeImages makes 24+i x 20 images: none square.
await writeImages(join(dir, 'images'), ['a.png', 'b.png', 'c/d.png', 'e.jpg']);
const out = join(dir, 'out');
const args = ['run', '--model', pair.model, '--mmproj', pair.mmproj, '--images', join(dir, 'images'), '--out', out, '--parallel', '2', '--threads', '1', '--keep-top', '0.5', '--no-report', '--max-tokens-qa', '96', '--max-question-chars', '20', '--max-answer-chars', '20', '--max-answer-lines', '1', '--max-tokens-check', '24', '--truncated', 'keep'];

t.test('info names the family of the pair', async (t) => {
  const r = await runCli(['info', '--model', pair.model, '--mmproj', pair.mmproj]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /family: +Qwen2\.5-VL \(projector qwen2\.5vl_merger\); prompt: the GGUF's tokenizer\.chat_template; images: at their own size, \d+\.\.1024 tokens each; ends a reply with <\|im_end\|>/);
  const json = await runCli(['info', '--json', '--model', pair.model, '--mmproj', pair.mmproj]);
  t.equal(JSON.parse(json.stdout).model.family, 'qwen2.5-vl');
  const alone = await runCli(['info', '--model', pair.model]);
  t.not(alone.code, 0, '--model without --mmproj is refused');
});

t.test('run: every image, LLaMA-Factory data, no train-lora.sh, and a resume that redoes nothing', async (t) => {
  const first = await runCli(args);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, /model family: Qwen2\.5-VL/);
  const lines = await readJournal(out);
  t.equal(lines.length, 4, 'one journal line per image');
  t.equal(lines.filter((l) => l.status === 'scored').length, 4, 'every image gave a scored triplet');
  const sharegpt = JSON.parse(await readFile(join(out, 'train.sharegpt.json'), 'utf8')) as { messages: { content: string }[]; images: string[] }[];
  t.ok(Array.isArray(sharegpt));
  for (const record of sharegpt) t.match(record.messages[0]!.content, /^<image>/, 'the <image> placeholder leads the first turn');
  t.ok(JSON.parse(await readFile(join(out, 'dataset_info.json'), 'utf8')).srf_round0_kept, 'dataset_info.json names the data');
  await t.rejects(access(join(out, 'train-lora.sh')), 'no LLaVA training script for this family');
  const manifest = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
  t.same(manifest.outputs.trainer, { family: 'qwen2.5-vl', format: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'qwen2_vl' });
  t.match(first.stdout + first.stderr, /llamafactory-cli train .*--template qwen2_vl/);
  t.notMatch(first.stdout + first.stderr, /train-lora\.sh|llava-v1\.5/, 'nothing of LLaVA-1.5\'s training in the next steps');

  const again = await runCli(args);
  t.equal(again.code, 0, again.stderr);
  t.same((await readJournal(out)).map((l) => l.id).sort(), lines.map((l) => l.id).sort(), 'the resume adds no line');
});
