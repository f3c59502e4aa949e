/**
 * train-lora.sh run for real by bash, with the two Python interpreters replaced by fakes that record
 * their argv (and run the stdlib-only inline Python for real): which converter gets which flags and
 * files, which interpreter runs what, the global batch, and the commands printed for the next step.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { trainLoraScript, type TrainScriptOptions } from '../lib/outputs/train-script.js';
import { tempDir } from './helpers/fixtures.js';

const REAL_PYTHON = spawnSync('python3', ['-c', 'import json, shutil'], { stdio: 'ignore' }).status === 0;

/** A fake interpreter: appends `name argv...` (tab-separated) to $FAKE_LOG; inline Python without torch runs for real. */
function fakePython(name: string): string {
  return `#!/usr/bin/env bash
printf '%s' ${name} >> "$FAKE_LOG"; for a in "$@"; do printf '\\t%s' "$a" >> "$FAKE_LOG"; done; echo >> "$FAKE_LOG"
if [ "\${1:-}" = - ]; then
  code=$(cat)
  if ! grep -q 'import.*torch' <<<"$code" && command -v python3 >/dev/null; then python3 - "\${@:2}" <<<"$code"; fi
fi
exit 0
`;
}

interface World {
  dir: string;
  env: Record<string, string>;
  log: string;
}

async function world(): Promise<World> {
  const dir = await tempDir();
  const bin = join(dir, 'bin');
  await mkdir(bin);
  for (const name of ['llava-py', 'llama-cpp-py']) {
    await writeFile(join(bin, name), fakePython(name));
    chmodSync(join(bin, name), 0o755);
  }
  const llava = join(dir, 'LLaVA');
  await mkdir(join(llava, 'llava', 'train'), { recursive: true });
  await mkdir(join(llava, 'scripts'));
  await writeFile(join(llava, 'llava', 'train', 'train_mem.py'), '');
  const llamaCpp = join(dir, 'llama.cpp');
  await mkdir(join(llamaCpp, 'tools', 'mtmd', 'legacy-models'), { recursive: true });
  await writeFile(join(llamaCpp, 'convert_lora_to_gguf.py'), '');
  await writeFile(join(llamaCpp, 'tools', 'mtmd', 'legacy-models', 'convert_image_encoder_to_gguf.py'), '');
  const clip = join(dir, 'clip');
  await mkdir(clip);
  await writeFile(join(clip, 'config.json'), JSON.stringify({ architectures: ['CLIPModel'], text_config: {}, vision_config: { num_hidden_layers: 24 } }));
  await writeFile(join(clip, 'vocab.json'), '{}');
  // A local copy of the released checkpoint, with everything the hub folder holds besides weights.
  const base = join(dir, 'llava-v1.5-7b');
  await mkdir(base);
  await writeFile(join(base, 'config.json'), JSON.stringify({ architectures: ['LlavaLlamaForCausalLM'], model_type: 'llava_llama', hidden_size: 4096 }));
  await writeFile(join(base, 'pytorch_model.bin.index.json'), JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'pytorch_model-00001-of-00002.bin' } }));
  for (const file of ['generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model']) await writeFile(join(base, file), '{}');
  const images = join(dir, 'images root');
  await mkdir(images);
  const data = join(dir, "it's data.json");
  await writeFile(data, '[]');
  const log = join(dir, 'calls.log');
  return {
    dir,
    log,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      FAKE_LOG: log,
      LLAVA_DIR: llava,
      LLAMA_CPP_DIR: llamaCpp,
      LLAVA_PY: join(bin, 'llava-py'),
      LLAMA_CPP_PY: join(bin, 'llama-cpp-py'),
      CLIP_DIR: clip,
      BASE_MODEL: base,
      OUTPUT_DIR: join(dir, 'out'),
      DATA: data,
      IMAGE_FOLDER: images,
    },
  };
}

async function runScript(w: World, options: TrainScriptOptions, env: Record<string, string> = {}) {
  const file = join(w.dir, `train-${Math.random().toString(36).slice(2)}.sh`);
  await writeFile(file, trainLoraScript(options));
  execFileSync('bash', ['-n', file]);
  await writeFile(w.log, '');
  const result = spawnSync('bash', [file], { env: { ...w.env, ...env }, encoding: 'utf8' });
  const calls = (await readFile(w.log, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t'));
  return { ...result, calls };
}

t.test('the converters get the flags and files llama.cpp documents, each stack its own Python', async (t) => {
  const w = await world();
  const result = await runScript(w, { purpose: 'refine', data: w.env.DATA as string, imageFolder: w.env.IMAGE_FOLDER as string, round: 1 });
  t.equal(result.status, 0, result.stderr);
  const training = result.calls.find((c) => c.includes('deepspeed.launcher.runner'));
  t.ok(training, 'deepspeed is launched');
  t.equal(training?.[0], 'llava-py', 'training runs in LLaVA\'s Python');
  t.ok(training?.includes(join(w.env.LLAVA_DIR as string, 'llava', 'train', 'train_mem.py')));
  const flag = (call: string[] | undefined, name: string) => call?.[call.indexOf(name) + 1];
  t.equal(flag(training, '--data_path'), w.env.DATA);
  t.equal(flag(training, '--image_folder'), w.env.IMAGE_FOLDER);

  const lora = result.calls.find((c) => c.some((a) => a.endsWith('convert_lora_to_gguf.py')));
  t.equal(lora?.[0], 'llama-cpp-py', 'convert_lora_to_gguf.py runs in llama.cpp\'s Python');
  const configDir = flag(lora, '--base') as string;
  t.equal(lora?.at(-1), w.env.OUTPUT_DIR, 'the PEFT adapter folder is LLaVA\'s output_dir');
  const encoder = result.calls.find((c) => c.some((a) => a.endsWith('convert_image_encoder_to_gguf.py')));
  t.equal(encoder?.[0], 'llama-cpp-py');
  t.equal(flag(encoder, '-m'), w.env.CLIP_DIR, 'the full CLIP folder');
  t.notOk(encoder?.includes('--clip-model-is-vision'), 'no --clip-model-is-vision with the full CLIPModel (its config has no top-level vision hparams)');
  t.equal(flag(encoder, '--llava-projector'), join(w.env.OUTPUT_DIR as string, 'llava.projector'));
  t.equal(result.calls.filter((c) => c[0] === 'llava-py').length, 2, 'LLaVA\'s Python: the import check and training, nothing else');
  t.notOk(result.calls.some((c) => c[0] === 'llava-py' && c.some((a) => a.includes('convert_'))), 'no converter in LLaVA\'s Python');

  if (REAL_PYTHON) {
    t.same((await readdir(configDir)).sort(), ['config.json', 'special_tokens_map.json', 'tokenizer.model', 'tokenizer_config.json'], 'config and tokenizer only: no weight index for the converter to chase');
    const config = JSON.parse(await readFile(join(configDir, 'config.json'), 'utf8'));
    t.same(config.architectures, ['LlamaForCausalLM']);
    t.equal(config.hidden_size, 4096);
  }

  t.match(result.stdout, /global batch 128 = 8 GPUs x 16 per device x 1 accumulation steps/);
  t.match(result.stdout, /srf-native tasks --data ".*it's data\.json" --image-folder ".*images root" --round 2/, 'next: step 1 again on this data');
  t.match(result.stdout, /--merge-with ".*it's data\.json" --merge-image-folder ".*images root"/, 'next: run merges with this data');
  t.match(result.stdout, /--lora <its adapter>/);
});

t.test('the global batch stays 128 where the GPUs allow it, and the script says which it used', async (t) => {
  const w = await world();
  const options: TrainScriptOptions = { purpose: 'tasks', data: w.env.DATA as string, imageFolder: w.env.IMAGE_FOLDER as string };
  for (const [gpus, per, expected] of [['8', '16', [16, 1]], ['4', '16', [16, 2]], ['1', '16', [16, 8]], ['8', '6', [4, 4]], ['16', '16', [8, 1]], ['6', '16', [11, 2]], ['3', '16', [14, 3]]] as const) {
    const result = await runScript(w, options, { NUM_GPUS: gpus, PER_DEVICE_BATCH: per });
    t.equal(result.status, 0, result.stderr);
    const training = result.calls.find((c) => c.includes('deepspeed.launcher.runner')) ?? [];
    const batch = Number(training[training.indexOf('--per_device_train_batch_size') + 1]);
    const accum = Number(training[training.indexOf('--gradient_accumulation_steps') + 1]);
    t.same([batch, accum], expected, `${gpus} GPUs, at most ${per} per device`);
    const global = Number(gpus) * batch * accum;
    t.match(result.stdout, new RegExp(`global batch ${global} = ${gpus} GPUs`));
    if (global === 128) t.notMatch(result.stderr, /warning/);
    else t.match(result.stderr, new RegExp(`the recipe's global batch is 128; ${gpus} GPUs reach ${global}`));
  }
});

t.test('missing environments and a vision-only CLIP folder fail before any training', async (t) => {
  const w = await world();
  const options: TrainScriptOptions = { purpose: 'tasks', data: w.env.DATA as string, imageFolder: w.env.IMAGE_FOLDER as string, source: { data: '/d/mix665k.json', imageFolder: '/d' } };
  const noLlava = await runScript(w, options, { LLAVA_PY: join(w.dir, 'nowhere', 'python') });
  t.not(noLlava.status, 0);
  t.match(noLlava.stderr, /no LLaVA Python at .*nowhere\/python/);
  t.same(noLlava.calls, [], 'nothing ran');
  const noLlamaCpp = await runScript(w, options, { LLAMA_CPP_PY: join(w.dir, 'nowhere', 'python') });
  t.match(noLlamaCpp.stderr, /no llama\.cpp Python/);
  await writeFile(join(w.env.CLIP_DIR as string, 'config.json'), JSON.stringify({ num_hidden_layers: 23, hidden_act: 'quick_gelu' }));
  const visionOnly = await runScript(w, options);
  t.not(visionOnly.status, 0);
  t.match(visionOnly.stderr, /is not the full openai\/clip-vit-large-patch14-336/);
  t.notOk(visionOnly.calls.some((c) => c.includes('deepspeed.launcher.runner')), 'no training started');

  await writeFile(join(w.env.CLIP_DIR as string, 'config.json'), JSON.stringify({ vision_config: {} }));
  const ok = await runScript(w, options);
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /srf-native run .*--lora ".*round0-multitask-lora-f16\.gguf"/, 'step 1 next: run with this adapter');
  t.match(ok.stdout, /--merge-with "\/d\/mix665k\.json" --merge-image-folder "\/d"/, 'with the data it was cut from');
});
