/**
 * The srf-native command line: `main(argv)` parses with yargs, runs one command and returns the exit
 * code (0 done, 2 an SrfError or a bad option, 1 anything unexpected, 130 interrupted). Errors are
 * one line on stderr: `srf-native: CODE: message`.
 */
import yargs, { type Argv } from 'yargs';
import { SrfError } from '../errors.js';
import { toolVersion } from '../outputs/version.js';
import { buildCommand } from './build.js';
import { evalCommand, worldQuestionsCommand } from './eval.js';
import { CliContext, type CliOptions } from './context.js';
import { infoCommand } from './info.js';
import { mergeCommand } from './merge.js';
import { reportCommand } from './report.js';
import { runCommand } from './run.js';
import { selectCommand } from './select.js';
import { tasksCommand } from './tasks.js';

export { CliContext, type CliOptions } from './context.js';

/**
 * yargs merges a single-valued option given twice into one wrong value (`--parallel 2 --parallel 1`
 * ran 3 sequences): refuse it, naming the option. Repeatable (array) options are left alone.
 */
function refuseRepeatedOptions(rawArgs: readonly string[], arrayOptions: readonly string[], aliases: Record<string, string[]>): void {
  const canonical = (name: string) => Object.entries(aliases).find(([, names]) => names.includes(name))?.[0] ?? name;
  const seen = new Set<string>();
  for (const token of rawArgs) {
    if (token === '--') break;
    if (!token.startsWith('--')) continue;
    const name = canonical(token.slice(2).split('=')[0].replace(/^no-/, ''));
    if (arrayOptions.includes(name)) continue;
    if (seen.has(name)) throw new SrfError('INVALID_ARGUMENT', `--${name} was given more than once; give it once`);
    seen.add(name);
  }
}

/** `--images -` (a tar on standard input): yargs reads a lone `-` as no value, so it is joined to its option. */
function joinStdinValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--images' && argv[i + 1] === '-') out.push(`--images=${argv[++i]}`);
    else out.push(argv[i] as string);
  }
  return out;
}

export async function main(rawArgv: string[] = process.argv.slice(2), options: CliOptions = {}): Promise<number> {
  const ctx = new CliContext(options);
  const argv = joinStdinValues(rawArgv);
  ctx.argv = argv;
  let output = '';
  const parser: Argv = yargs(argv)
    .scriptName('srf-native')
    .usage(
      '$0 <command> [options]\n\nSelf-refinement of LLaVA-1.5 with Triangular Consistency (arXiv 2510.10487) on a native llama.cpp engine (the method: docs/METHOD.md in the package).\nStart with `$0 run --demo`.',
    )
    .command(runCommand(ctx))
    .command(tasksCommand(ctx))
    .command(selectCommand(ctx))
    .command(mergeCommand(ctx))
    .command(evalCommand(ctx))
    .command(worldQuestionsCommand(ctx))
    .command(reportCommand(ctx))
    .command(infoCommand(ctx))
    .command(buildCommand(ctx))
    .middleware(() => {
      const declared = (parser as unknown as { getOptions(): { array: string[]; alias: Record<string, string[]> } }).getOptions();
      refuseRepeatedOptions(argv, declared.array, declared.alias);
    }, true)
    .demandCommand(1, 'name a command (run, tasks, select, merge, eval, world-questions, report, info, build); see --help')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(toolVersion())
    .wrap(Math.min(120, ctx.stderr.columns || 100))
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((message, error) => {
      if (error) throw error;
      throw new SrfError('INVALID_ARGUMENT', `${message} (see --help)`);
    });
  try {
    await parser.parseAsync(argv, {}, (_error, _args, text) => {
      output = text ?? '';
    });
    if (output) ctx.print(output);
    return ctx.exitCode;
  } catch (error) {
    return ctx.fail(error);
  }
}
