import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { validateLlavaDataset } from '../lib/emit/llava.js';
import { trainLoraScript } from '../lib/outputs/train-script.js';
import { buildMultiTaskData } from '../lib/srf/tasks.js';
import { tempDir } from './helpers/fixtures.js';
import { runCli } from './helpers/cli.js';

function records(count: number): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 7 === 3) {
      out.push({ id: `text-${i}`, conversations: [{ from: 'human', value: `What is ${i} + 1?` }, { from: 'gpt', value: `${i + 1}` }] });
      continue;
    }
    out.push({
      id: i % 5 === 0 ? i : `img-${i}`,
      image: `coco/train2017/${String(i).padStart(12, '0')}.jpg`,
      conversations: [
        { from: 'human', value: `<image>\nWhat color is object ${i}?\nAnswer the question using a single word or phrase.` },
        { from: 'gpt', value: i % 2 ? 'Red' : 'Blue' },
        { from: 'human', value: i % 4 === 0 ? '' : `Is it on the left?` },
        { from: 'gpt', value: 'Yes' },
      ],
    });
  }
  return out;
}

t.test('tasks: the streamed file equals buildMultiTaskData, seed for seed', async (t) => {
  const dir = await tempDir();
  const data = join(dir, 'mix.json');
  const input = records(60);
  await writeFile(data, JSON.stringify(input, null, 1));
  const out = join(dir, 'tasks');
  const result = await runCli(['tasks', '--data', data, '--out', out, '--seed', '3', '--image-folder', '/data/playground']);
  t.equal(result.code, 0, result.code === 0 ? 'exit 0' : result.stderr);
  const written = JSON.parse(await readFile(join(out, 'tasks.llava.json'), 'utf8'));
  const expected = buildMultiTaskData(input, { seed: 3 });
  t.same(written, JSON.parse(JSON.stringify(expected.records)), 'same records, same order, same task draw');
  t.equal(validateLlavaDataset(written).ok, true);
  const summary = JSON.parse(await readFile(join(out, 'tasks.json'), 'utf8'));
  t.same(summary.counts, expected.counts);
  t.equal(summary.textOnlyTurns, expected.textOnlyTurns);
  t.equal(summary.skippedTurns, expected.skipped.length);
  t.ok(summary.skippedTurns > 0, 'the data has empty turns to skip');
  t.ok(written.filter((r: { image?: string }) => r.image === undefined).every((r: { srf: { task: string } }) => r.srf.task === 'iqToA'), 'text-only turns are only IQ->A');
  t.match(result.stdout, new RegExp(`wrote ${written.length} records`));
  const script = await readFile(join(out, 'train-lora.sh'), 'utf8');
  t.match(script, /SRF round 0, step 1/);
  t.match(script, /DEFAULT_IMAGE_FOLDER='\/data\/playground'/);

  const other = await runCli(['tasks', '--data', data, '--out', join(dir, 'tasks-other'), '--seed', '4', '--ratios', '0.2,0.2,0.6', '--json']);
  t.equal(other.code, 0, other.code === 0 ? 'exit 0' : other.stderr);
  const event = JSON.parse(other.stdout);
  t.same(event.counts, buildMultiTaskData(input, { seed: 4, ratios: { iToQa: 0.2, iaToQ: 0.2, iqToA: 0.6 } }).counts);
});

t.test('tasks: a bad record is named by its position; bad ratios are refused', async (t) => {
  const dir = await tempDir();
  const data = join(dir, 'bad.json');
  const input = records(4);
  (input[2] as { conversations: unknown[] }).conversations = [{ from: 'gpt', value: 'x' }, { from: 'human', value: 'y' }];
  await writeFile(data, JSON.stringify(input));
  const result = await runCli(['tasks', '--data', data, '--out', join(dir, 'out')]);
  t.equal(result.code, 2);
  t.match(result.stderr, /^srf-native: DATA_INVALID: .*record 2 \(id "img-2"\)/m);
  const ratios = await runCli(['tasks', '--data', data, '--out', join(dir, 'out'), '--ratios', '0.5,0.5,0.5']);
  t.equal(ratios.code, 2);
  t.match(ratios.stderr, /INVALID_ARGUMENT: .*sum/);
});

t.test('train-lora.sh is valid bash whatever the paths hold, and carries the recipe', async (t) => {
  const dir = await tempDir();
  const file = join(dir, 'train-lora.sh');
  const data = `/data/we"ird $HOME/it's \`x\`/train.merged.llava.json`;
  const images = "/img folder/with 'quotes'";
  await writeFile(file, trainLoraScript({ purpose: 'refine', data, imageFolder: images, round: 1 }));
  execFileSync('bash', ['-n', file]);
  const printed = execFileSync('bash', ['-c', `eval "$(grep -E '^(DEFAULT_)?(DATA|IMAGE_FOLDER)=' ${JSON.stringify(file)})"; printf '%s\\n%s' "$DATA" "$IMAGE_FOLDER"`], { env: { PATH: process.env.PATH ?? '' } }).toString();
  t.equal(printed, `${data}\n${images}`, 'paths reach the script unchanged');
  const script = await readFile(file, 'utf8');
  for (const flag of ['--lora_enable True', '--lora_r 128', '--lora_alpha 256', '--mm_projector_lr 2e-5', '--learning_rate 2e-4', '--version v1', '--image_aspect_ratio pad', '--num_train_epochs 1', '--warmup_ratio 0.03', '--weight_decay 0.', '--model_max_length 2048', '--bf16 True', '--mm_projector_type mlp2x_gelu', '--mm_vision_select_layer -2', '--group_by_modality_length True', 'openai/clip-vit-large-patch14-336', 'GLOBAL_BATCH:-128', 'convert_lora_to_gguf.py']) {
    t.ok(script.includes(flag), flag);
  }
});

t.test('tasks --family: the family\'s trainer format, and train-lora.sh only where LLaVA-1.5\'s recipe fits', async (t) => {
  const dir = await tempDir();
  const data = join(dir, 'mix.json');
  await writeFile(data, JSON.stringify(records(20)));
  const out = join(dir, 'tasks');
  const llava = await runCli(['tasks', '--data', data, '--out', out, '--image-folder', '/data/playground']);
  t.equal(llava.code, 0, llava.code === 0 ? 'exit 0' : llava.stderr);
  t.ok(await exists(join(out, 'train-lora.sh')), 'LLaVA-1.5 (the default) gets train-lora.sh');

  const qwen = await runCli(['tasks', '--data', data, '--out', out, '--image-folder', '/data/playground', '--family', 'qwen2.5-vl']);
  t.equal(qwen.code, 0, qwen.code === 0 ? 'exit 0' : qwen.stderr);
  t.notOk(await exists(join(out, 'train-lora.sh')), 'no LLaVA-1.5 script beside Qwen2.5-VL data (the earlier one is removed)');
  const info = JSON.parse(await readFile(join(out, 'dataset_info.json'), 'utf8'));
  t.equal(info.srf_round0_tasks?.file_name, 'tasks.sharegpt.json', 'ShareGPT with its dataset_info.json, unasked');
  const summary = JSON.parse(await readFile(join(out, 'tasks.json'), 'utf8'));
  t.same(summary.trainer, { family: 'qwen2.5-vl', format: 'sharegpt', trainScript: false, llamaFactoryTemplate: 'qwen2_vl' });
  t.notOk(summary.outputs.trainScript);
  t.match(qwen.stdout, /llamafactory-cli train .*--template qwen2_vl/);
  t.match(qwen.stdout, /--dataset srf_round0_tasks --media_dir \S*data\/playground /);
  t.notMatch(qwen.stdout, /train-lora\.sh/);

  const mobile = await runCli(['tasks', '--data', data, '--out', join(dir, 'mobile'), '--family', 'mobilevlm']);
  t.equal(mobile.code, 0, mobile.code === 0 ? 'exit 0' : mobile.stderr);
  t.notOk(await exists(join(dir, 'mobile', 'train-lora.sh')), 'MobileVLM: LLaVA JSON for its own scripts, no LLaVA-1.5 recipe');
  t.match(mobile.stdout, /train mobilevlm with its own trainer on .*tasks\.llava\.json/);

  const bad = await runCli(['tasks', '--data', data, '--out', join(dir, 'bad'), '--family', 'llava-9']);
  t.not(bad.code, 0);
  t.match(bad.stderr, /INVALID_ARGUMENT[\s\S]*family/);
});

async function exists(file: string): Promise<boolean> {
  return readFile(file).then(() => true, () => false);
}
