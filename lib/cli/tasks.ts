/** `srf-native tasks` (step 1): LLaVA instruction data in, the multi-task I->QA / IA->Q / IQ->A data out. */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { buildTaskFile } from '../run/tasks-file.js';
import { DEFAULT_TASK_RATIOS } from '../srf/tasks.js';
import type { CliContext } from './context.js';
import { optionalInteger, parseRatios } from './options.js';

interface TasksArgs {
  data: string;
  out: string;
  ratios?: string;
  seed?: number;
  compensate: boolean;
  'image-folder'?: string;
  json: boolean;
}

function builder(y: Argv): Argv<TasksArgs> {
  return y
    .usage('$0 tasks --data llava_v1_5_mix665k.json --out DIR [options]\n\nStep 1 of SRF: splits LLaVA conversations into single (Q, A) turns (each keeps <image> and its format suffix) and masks each turn into one task: I->QA (image in, question + answer out), IA->Q (image + answer in, question out) or IQ->A (plain VQA), 50/20/30 % by default, seeded; text-only turns only ever become IQ->A. Writes DIR/tasks.llava.json (LLaVA JSON for LLaVA\'s trainer), DIR/tasks.json (counts) and DIR/train-lora.sh. The input is streamed (two passes), so the 1 GB mix665k file needs no more memory than a small one.')
    .options({
      data: { type: 'string', demandOption: true, describe: 'LLaVA instruction data: a JSON list of {id, image, conversations}' },
      out: { type: 'string', demandOption: true, describe: 'output folder' },
      ratios: { type: 'string', describe: `task shares I->QA,IA->Q,IQ->A summing to 1 (default ${DEFAULT_TASK_RATIOS.iToQa},${DEFAULT_TASK_RATIOS.iaToQ},${DEFAULT_TASK_RATIOS.iqToA})` },
      seed: { type: 'number', describe: 'seed of the task draw (default 0)' },
      compensate: { type: 'boolean', default: true, describe: 'let image turns make up for text-only turns (which can only be IQ->A) so the overall shares hit the ratios (--no-compensate: image turns draw with the ratios as given)' },
      'image-folder': { type: 'string', describe: 'LLaVA\'s --image_folder for this data, written into train-lora.sh (default: the data file\'s folder)' },
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
      const summary = await buildTaskFile(options);
      if (argv.json) {
        ctx.event({ event: 'finish', ...summary, seconds: (Date.now() - started) / 1000 });
        return;
      }
      const c = summary.counts;
      ctx.print(
        [
          `wrote ${summary.records} records in ${((Date.now() - started) / 1000).toFixed(1)} s: I->QA ${c.iToQa}, IA->Q ${c.iaToQ}, IQ->A ${c.iqToA} ` +
            `(${summary.imageTurns} turns with an image, ${summary.textOnlyTurns} text-only, ${summary.skippedTurns} empty turns skipped)`,
          `  ${path.relative(process.cwd(), summary.output) || summary.output}`,
          `  ${path.join(path.relative(process.cwd(), path.resolve(argv.out)) || '.', 'tasks.json')}  counts, plan, seed`,
          `  ${path.join(path.relative(process.cwd(), path.resolve(argv.out)) || '.', 'train-lora.sh')}  LLaVA LoRA fine-tuning of the step-1 generator, then GGUF`,
        ].join('\n'),
      );
    },
  };
}
