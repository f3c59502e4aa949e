/** `srf-native select`: select again from an output folder's scored triplets, without generating. */
import type { Argv, CommandModule } from 'yargs';
import { reselectRun, type ReselectOptions } from '../jobs/reselect.js';
import type { CliContext } from './context.js';
import { optionalNumber, parseFormats } from './options.js';

interface SelectArgs {
  in: string;
  'keep-top'?: number;
  'match-mix'?: string | false;
  format?: string[];
  'merge-with'?: string;
  'merge-image-folder'?: string;
  report: boolean;
  json: boolean;
}

function builder(y: Argv): Argv<SelectArgs> {
  return y
    .usage('$0 select --in DIR [--keep-top 0.1] [--match-mix FILE] [--format ...]\n\nRe-runs selection over DIR/triplets.jsonl with other settings and rewrites the kept flags, the training data, run.json and report.html. Settings not given stay as the folder was last selected.')
    .options({
      in: { type: 'string', demandOption: true, describe: 'output folder of a run (or of merge)' },
      'keep-top': { type: 'number', describe: 'fraction kept within each data type' },
      'match-mix': { type: 'string', describe: 'resample the kept set to the type mix of this LLaVA JSON (or JSON object of weights per type); --no-match-mix switches a previous one off' },
      format: { type: 'string', array: true, describe: 'training-data formats besides LLaVA: sharegpt, openai' },
      'merge-with': { type: 'string', describe: 'original LLaVA data: also write train.merged.llava.json' },
      'merge-image-folder': { type: 'string', describe: 'folder the --merge-with images are relative to' },
      report: { type: 'boolean', default: true, describe: 'rewrite report.html (--no-report to skip)' },
      json: { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' },
    }) as unknown as Argv<SelectArgs>;
}

export function selectCommand(ctx: CliContext): CommandModule<object, SelectArgs> {
  return {
    command: 'select',
    describe: 'select again from already scored triplets (another --keep-top or --match-mix), without generating',
    builder,
    handler: async (argv) => {
      const options: ReselectOptions = { out: argv.in, report: argv.report, command: ctx.argv, onLog: ctx.onLog };
      const keepTop = optionalNumber(argv['keep-top'], '--keep-top');
      if (keepTop !== undefined) options.keepTop = keepTop;
      const matchMix = argv['match-mix'] as unknown;
      if (matchMix === false || matchMix === 'false') options.matchMix = null;
      else if (typeof matchMix === 'string') options.matchMix = matchMix;
      if (argv.format) options.formats = parseFormats(argv.format);
      if (argv['merge-with'] !== undefined) options.mergeWith = argv['merge-with'];
      if (argv['merge-image-folder'] !== undefined) options.mergeImageFolder = argv['merge-image-folder'];
      const result = await reselectRun(options);
      if (argv.json) {
        ctx.event({ event: 'finish', out: result.out, counts: result.counts, selection: result.selection, outputs: result.outputs, previousKept: result.previousKept });
        return;
      }
      const byType = Object.entries(result.selection.byType)
        .filter(([, s]) => s.total > 0)
        .map(([type, s]) => `${type} ${s.kept}/${s.total}`)
        .join(', ');
      ctx.print(`kept ${result.counts.kept} of ${result.counts.scored} scored triplets (was ${result.previousKept ?? '?'}) — ${result.selection.policy}\n  ${byType}`);
    },
  };
}
