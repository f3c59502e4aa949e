/** `srf-native tasks` (step 1): LLaVA instruction data in, the multi-task I->QA / IA->Q / IQ->A data out. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { buildTaskFile } from '../jobs/tasks-file.js';
import { DEFAULT_TASK_RATIOS } from '../srf/tasks.js';
import { shellQuote, type CliContext } from './context.js';
import { optionalInteger, parseFormats, parseOpenAiImages, parseRatios } from './options.js';
import { promptOptions } from './next-steps.js';
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
  'openai-images'?: string;
  json: boolean;
}

function builder(y: Argv): Argv<TasksArgs> {
  return y
    .usage('$0 tasks --data llava_v1_5_mix665k.json --out DIR [options]\n\nStep 1 of SRF: splits LLaVA conversations into single (Q, A) turns (each keeps <image> and its format suffix) and masks each turn into one task: I->QA (image in, question + answer out), IA->Q (image + answer in, question out) or IQ->A (plain VQA), 50/20/30 % by default, seeded; text-only turns only ever become IQ->A. Writes DIR/tasks.llava.json (LLaVA JSON for LLaVA\'s trainer), DIR/tasks.json (counts, prompts, image folder, round) and DIR/train-lora.sh. Round k+1 starts here too, on round k\'s train.merged.llava.json. The input is streamed (two passes), so the 1 GB mix665k file needs no more memory than a small one.')
    .options({
      data: { type: 'string', demandOption: true, describe: 'LLaVA instruction data: a JSON list of {id, image, conversations}' },
      out: { type: 'string', demandOption: true, describe: 'output folder' },
      ratios: { type: 'string', describe: `task shares I->QA,IA->Q,IQ->A summing to 1 (default ${DEFAULT_TASK_RATIOS.iToQa},${DEFAULT_TASK_RATIOS.iaToQ},${DEFAULT_TASK_RATIOS.iqToA})` },
      seed: { type: 'number', describe: 'seed of the task draw (default 0)' },
      compensate: { type: 'boolean', default: true, describe: 'let image turns make up for text-only turns (which can only be IQ->A) so the overall shares hit the ratios (--no-compensate: image turns draw with the ratios as given)' },
      'image-folder': { type: 'string', describe: 'LLaVA\'s --image_folder for this data, written into train-lora.sh (default: the folder srf-native recorded when it wrote the data file, e.g. a run\'s train.merged.llava.json, else the data file\'s folder)' },
      round: { type: 'number', describe: 'SRF round this step 1 belongs to, in names and next commands (default: the round after the run that wrote --data, else 0)' },
      format: { type: 'string', array: true, describe: 'extra formats besides LLaVA: sharegpt (with LLaMA-Factory\'s dataset_info.json), openai (repeatable or comma-separated)' },
      'openai-images': { type: 'string', describe: 'how tasks.openai.jsonl references images: base64 (default), url-prefix=https://HOST/PATH, relative, absolute (as run)' },
      ...promptOptionSpecs(),
      json: { type: 'boolean', default: false, describe: 'print the summary as JSON on stdout' },
    }) as unknown as Argv<TasksArgs>;
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
      ctx.print(
        [
          `wrote ${summary.records} records in ${((Date.now() - started) / 1000).toFixed(1)} s: I->QA ${c.iToQa}, IA->Q ${c.iaToQ}, IQ->A ${c.iqToA} ` +
            `(${summary.imageTurns} turns with an image, ${summary.textOnlyTurns} text-only, ${summary.skippedTurns} empty turns skipped)`,
          `  ${path.relative(process.cwd(), summary.output) || summary.output}`,
          `  ${path.join(path.relative(process.cwd(), path.resolve(argv.out)) || '.', 'tasks.json')}  counts, plan, seed, prompts, round, image folder`,
          `  ${path.join(path.relative(process.cwd(), path.resolve(argv.out)) || '.', 'train-lora.sh')}  LLaVA LoRA fine-tuning of the round-${summary.round} generator, then GGUF`,
          `  image paths relative to ${summary.imageFolder} (${summary.imageFolderFrom === 'given' ? '--image-folder' : summary.imageFolderFrom === 'recorded' ? 'recorded when srf-native wrote the data' : "the data file's folder"}); ${summary.imageCheck.missing === 0 ? `all ${summary.imageCheck.images} found there` : `${summary.imageCheck.missing} of ${summary.imageCheck.images} NOT found there`}`,
          `Next: ${path.join(path.relative(process.cwd(), path.resolve(argv.out)) || '.', 'train-lora.sh')}, then srf-native run --lora <its adapter> --mmproj <its mmproj> --round ${summary.round} --merge-with ${path.relative(process.cwd(), summary.data) || summary.data} --merge-image-folder ${path.relative(process.cwd(), summary.imageFolder) || '.'} --images NEW_IMAGES${prompts.length > 0 ? ` ${prompts.map(shellQuote).join(' ')}` : ''} ... (the script prints the whole command)`,
        ].join('\n'),
      );
    },
  };
}
