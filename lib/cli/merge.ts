/** `srf-native merge`: join shard outputs and select over the union. */
import type { Argv, CommandModule } from 'yargs';
import { mergeRuns, type MergeOptions } from '../run/merge.js';
import type { CliContext } from './context.js';
import { optionalNumber, parseFormats } from './options.js';

interface MergeArgs {
  in: string[];
  out: string;
  'keep-top'?: number;
  'match-mix'?: string;
  format?: string[];
  'merge-with'?: string;
  'merge-image-folder'?: string;
  report: boolean;
  json: boolean;
}

function builder(y: Argv): Argv<MergeArgs> {
  return y
    .usage('$0 merge --in OUT1 --in OUT2 ... --out DIR [--keep-top 0.2] [--format ...]\n\nJoins the triplets.jsonl of several runs (the shards of `run --shard I/N`), one line per image id (the first folder wins a duplicate), then selects the top fraction per type over the union and writes every output into DIR. The folders must share the image root and the round.')
    .options({
      in: { type: 'string', array: true, demandOption: true, describe: 'output folder of a run (repeatable)' },
      out: { type: 'string', demandOption: true, describe: 'folder for the merged outputs' },
      'keep-top': { type: 'number', describe: 'fraction kept within each data type (default 0.2)' },
      'match-mix': { type: 'string', describe: 'resample the kept set to the type mix of this LLaVA JSON' },
      format: { type: 'string', array: true, describe: 'training-data formats besides LLaVA: sharegpt, openai' },
      'merge-with': { type: 'string', describe: 'original LLaVA data: also write train.merged.llava.json' },
      'merge-image-folder': { type: 'string', describe: 'folder the --merge-with images are relative to' },
      report: { type: 'boolean', default: true, describe: 'write report.html (--no-report to skip)' },
      json: { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' },
    }) as unknown as Argv<MergeArgs>;
}

export function mergeCommand(ctx: CliContext): CommandModule<object, MergeArgs> {
  return {
    command: 'merge',
    describe: 'join shard outputs (run --shard I/N) and select over the union',
    builder,
    handler: async (argv) => {
      const options: MergeOptions = { inputs: argv.in, out: argv.out, report: argv.report, command: ctx.argv, onLog: ctx.onLog };
      const keepTop = optionalNumber(argv['keep-top'], '--keep-top');
      if (keepTop !== undefined) options.keepTop = keepTop;
      if (argv['match-mix'] !== undefined) options.matchMix = argv['match-mix'];
      if (argv.format) options.formats = parseFormats(argv.format);
      if (argv['merge-with'] !== undefined) options.mergeWith = argv['merge-with'];
      if (argv['merge-image-folder'] !== undefined) options.mergeImageFolder = argv['merge-image-folder'];
      const result = await mergeRuns(options);
      if (argv.json) {
        ctx.event({ event: 'finish', out: result.out, counts: result.counts, selection: result.selection, outputs: result.outputs, duplicates: result.duplicates, linesPerInput: result.linesPerInput });
        return;
      }
      ctx.print(`merged ${Object.keys(result.linesPerInput).length} folders into ${result.out}: ${result.counts.images} images (${result.duplicates} duplicates dropped), ${result.counts.kept} kept — ${result.selection.policy}`);
    },
  };
}
