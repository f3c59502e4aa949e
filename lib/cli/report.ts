/** `srf-native report`: rebuild report.html from an output folder. */
import type { Argv, CommandModule } from 'yargs';
import { writeReport } from '../outputs/report.js';
import type { CliContext } from './context.js';

interface ReportArgs {
  in: string;
}

export function reportCommand(ctx: CliContext): CommandModule<object, ReportArgs> {
  return {
    command: 'report',
    describe: 'rebuild report.html (histograms, keep rates, examples, errors) from an output folder',
    builder: (y: Argv) =>
      y
        .usage('$0 report --in DIR\n\nRebuilds DIR/report.html from DIR/run.json and DIR/triplets.jsonl: one self-contained file, everything the model wrote escaped.')
        .options({ in: { type: 'string', demandOption: true, describe: 'output folder of a run' } }) as unknown as Argv<ReportArgs>,
    handler: async (argv) => {
      ctx.print(await writeReport(argv.in));
    },
  };
}
