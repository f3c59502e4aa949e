/**
 * The commands printed after a run: the loop's next steps with this run's files filled in. Round k's
 * step 3 trains on original + kept data (train-lora.sh); round k+1 starts again with step 1 on that
 * data (`tasks`, its train-lora.sh) and then step 2 with the new multi-task generator (`run --lora`).
 */
import path from 'node:path';
import type { RunManifest } from '../outputs/manifest.js';
import { DEFAULT_TEMPLATES, templateStrings } from '../srf/prompts.js';
import { shellQuote } from './context.js';

/** The --prompt-* options of a run whose templates differ from the defaults, for `tasks` and the next `run`. */
export function promptOptions(templates: unknown): string[] {
  const t = (templates ?? {}) as { iToQa?: string; iaToQ?: string; iqToA?: string };
  const defaults = templateStrings(DEFAULT_TEMPLATES);
  const escape = (text: string) => text.replace(/\n/g, '\\n');
  const out: string[] = [];
  if (t.iToQa !== undefined && t.iToQa !== defaults.iToQa) out.push('--prompt-qa', escape(t.iToQa));
  if (t.iaToQ !== undefined && t.iaToQ !== defaults.iaToQ) out.push('--prompt-a2q', escape(t.iaToQ));
  if (t.iqToA !== undefined && t.iqToA !== defaults.iqToA) out.push('--prompt-q2a', escape(t.iqToA));
  return out;
}

/** `llamafactory-cli train` on a ShareGPT dataset srf-native wrote (with its dataset_info.json), as two shell lines. */
export function llamaFactoryTrainCommand(o: { template: string | undefined; datasetDir: string; dataset: string; mediaDir: string; outputDir: string }): string[] {
  const cmd = (args: string[]) => args.map(shellQuote).join(' ');
  return [
    `${cmd(['llamafactory-cli', 'train', '--stage', 'sft', '--do_train', 'true', '--finetuning_type', 'lora', '--model_name_or_path', 'HF_MODEL', '--template', o.template ?? 'TEMPLATE'])} \\`,
    cmd(['--dataset_dir', o.datasetDir, '--dataset', o.dataset, '--media_dir', o.mediaDir, '--output_dir', o.outputDir, '--num_train_epochs', '1', '--learning_rate', '1e-4', '--bf16', 'true']),
  ];
}

export function nextStepLines(out: string, manifest: RunManifest): string[] {
  const round = manifest.round ?? 0;
  const next = round + 1;
  const outputs = manifest.outputs;
  const rel = (file: string) => path.relative(process.cwd(), file) || '.';
  const prompts = promptOptions((manifest.generation as { templates?: unknown } | null)?.templates);
  const merged = outputs.merged ? path.join(out, outputs.merged) : undefined;
  const data = merged ? rel(merged) : 'ORIGINAL_PLUS_KEPT.json';
  const images = merged && outputs.mergedImageRoot ? rel(outputs.mergedImageRoot) : 'ITS_IMAGE_FOLDER';
  const tasksOut = `${rel(out)}-round${next}-tasks`;
  const cmd = (args: string[]) => args.map(shellQuote).join(' ');
  const lines = ['Next (SRF loop):'];
  if (!merged) {
    lines.push(`  WARNING: no --merge-with, so step 3 would train on synthetic data only; run again with --merge-with ORIGINAL.json (e.g. llava_v1_5_mix665k.json) --merge-image-folder ITS_IMAGE_FOLDER`);
  }
  const trainer = outputs.trainer;
  if (!outputs.trainScript && trainer?.format === 'sharegpt') {
    // Every family but LLaVA-1.5 trains with LLaMA-Factory on the ShareGPT data and its dataset_info.json.
    const k = round;
    const dataset = outputs.mergedFormats?.sharegpt ? `srf_round${k}_merged` : `srf_round${k}_kept`;
    const mediaDir = outputs.mergedFormats?.sharegpt && outputs.mergedImageRoot ? outputs.mergedImageRoot : (manifest.imageRoot ?? 'IMAGE_ROOT');
    lines.push(
      `  round ${round}, step 3 (refined model, LLaMA-Factory; HF_MODEL is the Hugging Face checkpoint this GGUF was converted from):`,
      ...llamaFactoryTrainCommand({ template: trainer.llamaFactoryTemplate, datasetDir: rel(out), dataset, mediaDir: rel(mediaDir), outputDir: `${rel(out)}/checkpoints/srf-round${k}-lora` }).map((line) => `      ${line}`),
      `      (${outputs.llamaFactory?.dataArguments ?? 'llamafactory-data.yaml'} holds the same data arguments; convert the adapter back with llama.cpp's convert_lora_to_gguf.py)`,
    );
  }
  const ownLlavaTrainer = !outputs.trainScript && trainer?.format === 'llava';
  if (ownLlavaTrainer) {
    // MobileVLM reads LLaVA JSON but trains with its own repository's scripts, not LLaVA-1.5's recipe.
    lines.push(`  round ${round}, step 3 (refined model): train ${trainer.family} with its own trainer on ${data} (LLaVA JSON; images in ${images})`);
  }
  if (outputs.trainScript) {
    lines.push(`  round ${round}, step 3 (refined model):  ${rel(path.join(out, outputs.trainScript))}`);
    lines.push(
      `  did it help:  ${cmd(['srf-native', 'eval', '--questions', 'QUESTIONS.jsonl', '--model', rel(manifest.models?.model.path ?? 'TEXT.gguf'), '--mmproj', 'ITS_MMPROJ', '--lora', 'ITS_ADAPTER', '--answers-file', `round${round}-refined.answers.jsonl`, '--truth', 'TRUTH.jsonl'])}`,
      `                ${cmd(['srf-native', 'eval', '--compare', 'BEFORE.answers.jsonl', `round${round}-refined.answers.jsonl`, '--truth', 'TRUTH.jsonl'])}`,
    );
  }
  const shareGpt = !outputs.trainScript && trainer?.format === 'sharegpt';
  lines.push(`  round ${next}, step 1 (generator):  ${cmd(['srf-native', 'tasks', '--data', data, '--image-folder', images, '--round', String(next), ...prompts, ...(trainer && !outputs.trainScript ? ['--family', trainer.family] : []), '--out', tasksOut])}`);
  if (shareGpt) lines.push(`                                   then LLaMA-Factory as above with --dataset_dir ${shellQuote(tasksOut)} --dataset srf_round${next}_tasks (its media_dir in ${tasksOut}/llamafactory-data.yaml)`);
  else if (ownLlavaTrainer) lines.push(`                                   then ${trainer.family}'s own trainer on ${tasksOut}/tasks.llava.json`);
  else lines.push(`                                   ${cmd([`${tasksOut}/train-lora.sh`])}`);
  const model = manifest.models?.model.path ?? 'TEXT.gguf';
  const embedder = manifest.models?.embedder?.path ?? 'EMBEDDER.gguf';
  // LLaVA's train-lora.sh converts its checkpoint to GGUF in a known place; a LLaMA-Factory adapter is converted by hand.
  const generator = shareGpt || ownLlavaTrainer
    ? ['--mmproj', rel(manifest.models?.mmproj.path ?? 'MMPROJ.gguf'), '--lora', `ROUND${next}_GENERATOR_LORA.gguf`]
    : ['--mmproj', `${tasksOut}/checkpoints/llava-v1.5-srf-round${next}-multitask-lora/mmproj-model-f16.gguf`, '--lora', `${tasksOut}/checkpoints/llava-v1.5-srf-round${next}-multitask-lora/llava-v1.5-srf-round${next}-multitask-lora-f16.gguf`];
  lines.push(
    `  round ${next}, step 2:  ${cmd(['srf-native', 'run', '--model', rel(model), ...generator])} \\`,
    `      ${cmd(['--embedder', rel(embedder), '--images', 'NEW_IMAGES', '--merge-with', data, '--merge-image-folder', images, '--round', String(next), ...prompts, '--out', `${rel(out)}-round${next}`])}`,
  );
  return lines;
}
