/** `srf-native tasks` (step 1): LLaVA instruction data in, the multi-task I->QA / IA->Q / IQ->A data out. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { buildTaskFile, type TaskFileSummary } from '../jobs/tasks-file.js';
import { FAMILY_NAMES } from '../engine/families.js';
import { DEFAULT_TASK_RATIOS } from '../srf/tasks.js';
import { shellQuote, type CliContext } from './context.js';
import { optionalInteger, parseFormats, parseOpenAiImages, parseRatios } from './options.js';
import { llamaFactoryTrainCommand, promptOptions } from './next-steps.js';
import { promptOptionSpecs, promptTemplates, type PromptArgs } from './prompt-options.js';

interface TasksArgs extends PromptArgs {
  data: string;
  out: string;
  ratios?: string;
  seed?: number;
  compensate: boolean;
  'image-folder'?: string;
  round?: number;
  format?: string[];
  family?: string;
  'openai-images'?: string;
  json: boolean;
}

function builder(y: Argv): Argv<TasksArgs> {
  return y
    .usage('$0 tasks --data llava_v1_5_mix665k.json --out DIR [options]\n\nStep 1 of SRF: splits LLaVA conversations into single (Q, A) turns (each keeps <image> and its format suffix) and masks each turn into one task: I->QA (image in, question + answer out), IA->Q (image + answer in, question out) or IQ->A (plain VQA), 50/20/30 % by default, seeded; text-only turns only ever become IQ->A. Writes DIR/tasks.llava.json (LLaVA JSON for LLaVA\'s trainer), DIR/tasks.json (counts, prompts, image folder, round) and DIR/train-lora.sh (--family other than llava-1.5: ShareGPT for LLaMA-Factory instead of the script). Round k+1 starts here too, on round k\'s train.merged.llava.json. The input is streamed (two passes), so the 1 GB mix665k file needs no more memory than a small one.')
    .options({
      data: { type: 'string', demandOption: true, describe: 'LLaVA instruction data: a JSON list of {id, image, conversations}' },
      out: { type: 'string', demandOption: true, describe: 'output folder' },
      ratios: { type: 'string', describe: `task shares I->QA,IA->Q,IQ->A summing to 1 (default ${DEFAULT_TASK_RATIOS.iToQa},${DEFAULT_TASK_RATIOS.iaToQ},${DEFAULT_TASK_RATIOS.iqToA})` },
      seed: { type: 'number', describe: 'seed of the task draw (default 0)' },
      compensate: { type: 'boolean', default: true, describe: 'let image turns make up for text-only turns (which can only be IQ->A) so the overall shares hit the ratios (--no-compensate: image turns draw with the ratios as given)' },
      'image-folder': { type: 'string', describe: 'LLaVA\'s --image_folder for this data, written into train-lora.sh (default: the folder srf-native recorded when it wrote the data file, e.g. a run\'s train.merged.llava.json, else the data file\'s folder)' },
      round: { type: 'number', describe: 'SRF round this step 1 belongs to, in names and next commands (default: the round after the run that wrote --data, else 0)' },
      format: { type: 'string', array: true, describe: 'extra formats besides LLaVA: sharegpt (with LLaMA-Factory\'s dataset_info.json), openai (repeatable or comma-separated)' },
      family: { type: 'string', choices: FAMILY_NAMES, describe: 'the model family the generator is trained for (default llava-1.5; `srf-native info` names it; other: a projector srf-native does not name): the others get ShareGPT with LLaMA-Factory\'s dataset_info.json and the llamafactory-cli command instead of train-lora.sh (LLaVA-1.5\'s recipe; MobileVLM: LLaVA JSON for its own scripts)' },
      'openai-images': { type: 'string', describe: 'how tasks.openai.jsonl references images: base64 (default), url-prefix=https://HOST/PATH, relative, absolute (as run)' },
      ...promptOptionSpecs(),
      json: { type: 'boolean', default: false, describe: 'print the summary as JSON on stdout' },
    }) as unknown as Argv<TasksArgs>;
}

/** What to do after step 1: the family's trainer on the data just written, then `run` with the generator. */
function nextLines(trainer: TaskFileSummary['trainer'], round: number, out: string, imageFolder: string, rel: (file: string) => string, script: string, runLater: string): string[] {
  if (trainer.trainScript) return [`Next: ${script}, then ${runLater} ... (the script prints the whole command)`];
  if (trainer.format === 'llava') return [`Next: train ${trainer.family} with its own trainer on ${path.join(out, 'tasks.llava.json')} (images in ${rel(imageFolder)}), then ${runLater} ...`];
  return [
    `Next (LLaMA-Factory; HF_MODEL is the Hugging Face checkpoint your GGUF was converted from):`,
    ...llamaFactoryTrainCommand({ template: trainer.llamaFactoryTemplate, datasetDir: out, dataset: `srf_round${round}_tasks`, mediaDir: rel(imageFolder), outputDir: `${out}/checkpoints/srf-round${round}-multitask-lora` }).map((line) => `  ${line}`),
    `  then convert the adapter with llama.cpp's convert_lora_to_gguf.py, and ${runLater} ...`,
  ];
}

export function tasksCommand(ctx: CliContext): CommandModule<object, TasksArgs> {
  return {
    command: 'tasks',
    describe: 'step 1: re-cut LLaVA instruction data into I->QA / IA->Q / IQ->A training data',
    builder,
    handler: async (argv) => {
      const started = Date.now();
      const options: Parameters<typeof buildTaskFile>[0] = {
        data: argv.data,
        out: argv.out,
        compensateTextOnly: argv.compensate,
        onProgress: (records) => ctx.log(`read ${records} records`),
      };
      if (argv.ratios !== undefined) options.ratios = parseRatios(argv.ratios);
      const seed = optionalInteger(argv.seed, '--seed');
      if (seed !== undefined) options.seed = seed;
      if (argv['image-folder'] !== undefined) options.imageFolder = argv['image-folder'];
      const round = optionalInteger(argv.round, '--round');
      if (round !== undefined) options.round = round;
      if (argv.format) options.formats = parseFormats(argv.format);
      if (argv.family !== undefined) options.family = argv.family;
      const openaiImages = parseOpenAiImages(argv['openai-images']);
      if (openaiImages) options.openaiImages = openaiImages;
      const templates = promptTemplates(argv);
      if (templates) options.templates = templates;
      options.onWarning = (message) => ctx.warn(message);
      const summary = await buildTaskFile(options);
      if (argv.json) {
        ctx.event({ event: 'finish', ...summary, seconds: (Date.now() - started) / 1000 });
        return;
      }
      const c = summary.counts;
      const prompts = promptOptions(summary.templates);
      const rel = (file: string) => path.relative(process.cwd(), file) || '.';
      const out = rel(path.resolve(argv.out));
      const script = path.join(out, 'train-lora.sh');
      const runLater = `srf-native run --lora <its adapter> --mmproj <its mmproj> --round ${summary.round} --merge-with ${rel(summary.data)} --merge-image-folder ${rel(summary.imageFolder)} --images NEW_IMAGES${prompts.length > 0 ? ` ${prompts.map(shellQuote).join(' ')}` : ''}`;
      const trainer = summary.trainer;
      ctx.print(
        [
          `wrote ${summary.records} records in ${((Date.now() - started) / 1000).toFixed(1)} s: I->QA ${c.iToQa}, IA->Q ${c.iaToQ}, IQ->A ${c.iqToA} ` +
            `(${summary.imageTurns} turns with an image, ${summary.textOnlyTurns} text-only, ${summary.skippedTurns} empty turns skipped)`,
          `  ${rel(summary.output)}`,
          ...(summary.outputs.sharegpt ? [`  ${path.join(out, summary.outputs.sharegpt)}  ShareGPT, with ${summary.outputs.datasetInfo} and ${summary.outputs.llamaFactoryData} for LLaMA-Factory`] : []),
          `  ${path.join(out, 'tasks.json')}  counts, plan, seed, prompts, round, image folder, trainer`,
          ...(trainer.trainScript ? [`  ${script}  LLaVA LoRA fine-tuning of the round-${summary.round} generator, then GGUF`] : []),
          `  image paths relative to ${summary.imageFolder} (${summary.imageFolderFrom === 'given' ? '--image-folder' : summary.imageFolderFrom === 'recorded' ? 'recorded when srf-native wrote the data' : "the data file's folder"}); ${summary.imageCheck.missing === 0 ? `all ${summary.imageCheck.images} found there` : `${summary.imageCheck.missing} of ${summary.imageCheck.images} NOT found there`}`,
          ...nextLines(trainer, summary.round, out, summary.imageFolder, rel, script, runLater),
        ].join('\n'),
      );
    },
  };
}
