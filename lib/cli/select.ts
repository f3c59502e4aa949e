/** `srf-native select`: select again from an output folder's scored triplets, without generating. */
import type { Argv, CommandModule } from 'yargs';
import { reselectRun, type ReselectOptions } from '../jobs/reselect.js';
import type { CliContext } from './context.js';
import { invalidArgument } from '../errors.js';
import { SELECTION_OPTIONS, selectionFromArgs, type SelectionArgs } from './options.js';

interface SelectArgs extends SelectionArgs {
  in: string;
  'min-score'?: number;
}

function builder(y: Argv): Argv<SelectArgs> {
  return y
    .usage('$0 select --in DIR [--keep-top 0.1] [--match-mix FILE] [--format ...]\n\nRe-runs selection over DIR/triplets.jsonl with other settings and rewrites the kept flags, the training data, run.json and report.html. Settings not given stay as the folder was last selected.')
    .options({
      in: { type: 'string', demandOption: true, describe: 'output folder of a run (or of merge)' },
      ...SELECTION_OPTIONS,
      'match-mix': { ...SELECTION_OPTIONS['match-mix'], describe: `${SELECTION_OPTIONS['match-mix'].describe}; --no-match-mix switches a previous one off` },
      'min-score': { type: 'number', describe: "keep nothing whose S is under this, whatever the type's quota (default: the floor the folder was made with, 0.9 for the refined filters; 0: none, the paper's selection; docs/METHOD.md)" },
    }) as unknown as Argv<SelectArgs>;
}

export function selectCommand(ctx: CliContext): CommandModule<object, SelectArgs> {
  return {
    command: 'select',
    describe: 'select again from already scored triplets (another --keep-top or --match-mix), without generating',
    builder,
    handler: async (argv) => {
      const options: ReselectOptions = { out: argv.in, report: argv.report, command: ctx.argv, onLog: ctx.onLog, ...selectionFromArgs(argv) };
      const minScore = argv['min-score'];
      if (minScore !== undefined) {
        if (typeof minScore !== 'number' || !Number.isFinite(minScore) || minScore < 0 || minScore > 1) throw invalidArgument('a number in [0, 1]', '--min-score', minScore);
        options.minScore = minScore === 0 ? null : minScore;
      }
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
