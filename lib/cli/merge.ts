/** `srf-native merge`: join shard outputs and select over the union. */
import type { Argv, CommandModule } from 'yargs';
import { SrfError } from '../errors.js';
import { mergeRuns, type MergeOptions, type MergeSummary } from '../jobs/merge.js';
import { mergeShards, type MergeShardsSummary } from '../jobs/merge-shards.js';
import type { CliContext } from './context.js';
import { SELECTION_OPTIONS, selectionFromArgs, type SelectionArgs } from './options.js';

interface MergeArgs extends SelectionArgs {
  dir?: string;
  in?: string[];
  out?: string;
}

function builder(y: Argv): Argv<MergeArgs> {
  return y
    .usage('$0 merge OUT [--keep-top 0.2] [--format ...]\n$0 merge --in RUN1 --in RUN2 ... --out DIR\n\nJoins the triplets.jsonl of several runs, one line per image id (the first folder wins a duplicate), then selects the top fraction per type over the union and writes every output. `merge OUT` joins the complete shards of `run --shard I/N --out OUT` (OUT/shard-I-of-N/) into OUT, reports missing and unfinished shards (exit code 3 when some are), and can be run again as more shards finish. The folders must share the image root and the round.')
    .positional('dir', { type: 'string', describe: 'the --out of `run --shard`: its shard-I-of-N folders are joined into it' })
    .options({
      in: { type: 'string', array: true, describe: 'output folder of a run (repeatable; instead of OUT)' },
      out: { type: 'string', describe: 'folder for the merged outputs (default with OUT: OUT itself)' },
      ...SELECTION_OPTIONS,
      'keep-top': { ...SELECTION_OPTIONS['keep-top'], describe: 'fraction kept within each data type (default 0.2)' },
    }) as unknown as Argv<MergeArgs>;
}

export function mergeCommand(ctx: CliContext): CommandModule<object, MergeArgs> {
  return {
    command: 'merge [dir]',
    describe: 'join shard outputs (run --shard I/N) and select over the union',
    builder,
    handler: async (argv) => {
      if ((argv.dir === undefined) === (argv.in === undefined)) throw new SrfError('INVALID_ARGUMENT', 'merge takes either OUT (the --out of the shard runs) or --in folders with --out (see --help)');
      if (argv.in !== undefined && argv.out === undefined) throw new SrfError('INVALID_ARGUMENT', 'merge --in needs --out DIR (see --help)');
      // What both kinds of merge take; then OUT's shards, or the --in folders into --out.
      const { matchMix, ...settings } = selectionFromArgs(argv);
      const selection: Omit<MergeOptions, 'inputs' | 'out'> = { report: argv.report, command: ctx.argv, onLog: ctx.onLog, ...settings, ...(matchMix ? { matchMix } : {}) };
      let result: MergeSummary;
      let shards: MergeShardsSummary['shards'] | undefined;
      let incomplete = false;
      if (argv.dir !== undefined) {
        const merged = await mergeShards({ ...selection, out: argv.dir, ...(argv.out !== undefined ? { into: argv.out } : {}) });
        result = merged;
        shards = merged.shards;
        incomplete = !merged.allComplete;
        if (incomplete) ctx.exitCode = 3;
      } else {
        result = await mergeRuns({ ...selection, inputs: argv.in as string[], out: argv.out as string });
      }
      if (argv.json) {
        ctx.event({ event: 'finish', out: result.out, counts: result.counts, selection: result.selection, outputs: result.outputs, duplicates: result.duplicates, linesPerInput: result.linesPerInput, ...(shards ? { shards } : {}) });
        return;
      }
      const what = shards ? `${shards.complete.length} of ${shards.count} shards` : `${Object.keys(result.linesPerInput).length} folders`;
      ctx.print(`merged ${what} into ${result.out}: ${result.counts.images} images (${result.duplicates} duplicates dropped), ${result.counts.kept} kept — ${result.selection.policy}`);
      if (shards && incomplete) {
        ctx.print(`incomplete: ${[...shards.missing.map((s) => `${s.index} missing`), ...shards.unfinished.map((s) => `${s.index} ${s.status}`)].join(', ')}; run merge again once they finish`);
      }
    },
  };
}
