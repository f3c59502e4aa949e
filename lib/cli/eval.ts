/**
 * `srf-native eval`: answer a LLaVA question file (and score it), score an answers file, or compare
 * two answers files on the same truth. `srf-native world-questions` writes a held-out world question
 * file with its truth, to try the loop's evaluation without any download.
 */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { SrfError } from '../errors.js';
import { gpuStartNotes } from '../engine/gpu-notes.js';
import { buildInfo } from '../engine/native.js';
import { compareAnswersFiles, type PairedDifference } from '../jobs/eval/compare.js';
import { evaluate, scoreAnswersFile, type EvaluateOptions, type ScoreResult } from '../jobs/eval/evaluate.js';
import type { ScoreSummary } from '../jobs/eval/score.js';
import { writeWorldQuestions } from '../world/questions.js';
import type { CliContext } from './context.js';
import { optionalInteger, parseLoraSpec } from './options.js';

interface EvalArgs {
  questions?: string;
  'image-folder'?: string;
  model?: string;
  mmproj?: string;
  lora?: string[];
  'answers-file'?: string;
  truth?: string;
  compare?: string[];
  'max-tokens'?: number;
  parallel?: number;
  threads?: number;
  'gpu-layers'?: number;
  'require-gpu'?: boolean;
  shard?: string;
  json: boolean;
}

function builder(y: Argv): Argv<EvalArgs> {
  return y
    .usage(
      [
        '$0 eval --questions Q.jsonl --image-folder DIR --model M.gguf --mmproj P.gguf [--lora L.gguf] --answers-file A.jsonl [--truth T.jsonl]',
        '$0 eval --answers-file A.jsonl --truth T.jsonl [--questions Q.jsonl]',
        '$0 eval --compare A.jsonl B.jsonl --truth T.jsonl [--questions Q.jsonl]',
        '',
        "Answers LLaVA's question-file format ({question_id, image, text, category}) greedily with LLaVA-1.5's prompt and writes LLaVA's answers file ({question_id, prompt, text, answer_id, model_id, metadata}), which LLaVA's and the benchmarks' scorers take unchanged; resumes where the answers file stops. With --truth ({question_id, answer | answers} jsonl, or a LLaVA JSON with conversations) it scores them: VQAv2 accuracy where there are several references, option letters, yes/no with F1, box IoU >= 0.5, exact match otherwise, per category and data type with 95 % intervals. --compare gives the paired difference B - A with a bootstrap interval.",
      ].join('\n'),
    )
    .options({
      questions: { type: 'string', describe: 'LLaVA question file (jsonl)' },
      'image-folder': { type: 'string', describe: "folder the questions' images are relative to (default: the question file's folder)" },
      model: { type: 'string', describe: 'text model GGUF' },
      mmproj: { type: 'string', describe: 'mmproj GGUF' },
      lora: { type: 'string', array: true, describe: 'LoRA adapter GGUF, FILE[:SCALE] (repeatable): round k+1 = the same base + its adapter' },
      'answers-file': { type: 'string', describe: 'answers file to write (or, without --model, to score)' },
      truth: { type: 'string', describe: 'ground truth: jsonl {question_id, answer | answers} or a LLaVA JSON with conversations' },
      compare: { type: 'string', array: true, describe: 'two answers files A B: the paired difference B - A' },
      'max-tokens': { type: 'number', describe: 'longest answer in tokens (default 128, as LLaVA)' },
      parallel: { type: 'number', describe: 'sequences decoded together (default: sized for the machine)' },
      threads: { type: 'number', describe: 'CPU threads' },
      'gpu-layers': { type: 'number', describe: 'layers offloaded to the GPU (default all)' },
      'require-gpu': { type: 'boolean', describe: 'fail (exit 2) before any question is answered when the work would run on the CPU, saying why (also SRF_REQUIRE_GPU=1)' },
      shard: { type: 'string', describe: 'I/N, auto or auto/N: answer every N-th question from the I-th (one answers file per shard)' },
      json: { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' },
    }) as unknown as Argv<EvalArgs>;
}

function percent(x: number): string {
  return `${(100 * x).toFixed(1)}`;
}

function summaryLine(name: string, s: ScoreSummary): string {
  const yn = s.yesNo ? `  yes/no F1 ${percent(s.yesNo.f1)}, precision ${percent(s.yesNo.precision)}, recall ${percent(s.yesNo.recall)}, yes ${percent(s.yesNo.yesRatio)} %` : '';
  return `  ${name.padEnd(16)} ${String(s.n).padStart(6)}  ${percent(s.accuracy).padStart(5)} %  [${percent(s.low)}, ${percent(s.high)}]${yn}`;
}

/** The categories worth a line: all of them, unless the only one is the default 'all'. */
function namedCategories<T>(byCategory: Record<string, T>): Array<[string, T]> {
  const entries = Object.entries(byCategory);
  return entries.length === 1 && entries[0]![0] === 'all' ? [] : entries;
}

function scoreText(score: ScoreResult): string {
  const r = score.report;
  const lines = [`  ${'group'.padEnd(16)} ${'n'.padStart(6)}  accuracy  95 % interval`, summaryLine('all', r.overall)];
  for (const [c, s] of namedCategories(r.byCategory)) lines.push(summaryLine(`category ${c}`, s));
  for (const [t, s] of Object.entries(r.byDataType)) lines.push(summaryLine(t, s!));
  if (score.answersWithoutTruth > 0 || score.truthWithoutAnswer > 0) {
    lines.push(`  ${score.answersWithoutTruth} answers have no truth; ${score.truthWithoutAnswer} truth entries have no answer (not scored)`);
  }
  return lines.join('\n');
}

function differenceLine(name: string, d: PairedDifference): string {
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${percent(x)}`;
  return `  ${name.padEnd(16)} ${String(d.n).padStart(6)}  A ${percent(d.a)} %  B ${percent(d.b)} %  B - A ${sign(d.difference)} points [${sign(d.low)}, ${sign(d.high)}]`;
}

function evaluateOptions(argv: EvalArgs): EvaluateOptions {
  if (!argv.questions || !argv.mmproj || !argv['answers-file']) {
    throw new SrfError('INVALID_ARGUMENT', 'answering needs --questions, --model, --mmproj and --answers-file (see --help)');
  }
  const options: EvaluateOptions = {
    questions: argv.questions,
    imageFolder: argv['image-folder'] ?? path.dirname(argv.questions),
    model: argv.model as string,
    mmproj: argv.mmproj,
    answersFile: argv['answers-file'],
  };
  if (argv.lora) options.loras = argv.lora.map(parseLoraSpec);
  if (argv.truth) options.truth = argv.truth;
  if (argv.shard) options.shard = argv.shard;
  const set = <K extends 'maxTokens' | 'parallel' | 'threads' | 'gpuLayers'>(key: K, value: unknown, name: string) => {
    const v = optionalInteger(value, name);
    if (v !== undefined) options[key] = v;
  };
  set('maxTokens', argv['max-tokens'], '--max-tokens');
  set('parallel', argv.parallel, '--parallel');
  set('threads', argv.threads, '--threads');
  set('gpuLayers', argv['gpu-layers'], '--gpu-layers');
  if (argv['require-gpu'] !== undefined) options.requireGpu = argv['require-gpu'];
  return options;
}

export function evalCommand(ctx: CliContext): CommandModule<object, EvalArgs> {
  return {
    command: 'eval',
    describe: "answer a LLaVA question file and score it (is round k+1 better than round k?), or compare two answers files",
    builder,
    handler: async (argv) => {
      if (argv.compare) {
        if (argv.compare.length !== 2 || !argv.truth) throw new SrfError('INVALID_ARGUMENT', '--compare takes two answers files A B, and --truth');
        const [a, b] = argv.compare as [string, string];
        const { a: ra, b: rb, comparison } = await compareAnswersFiles(a, b, argv.truth, argv.questions);
        if (argv.json) return ctx.event({ event: 'compare', a: ra.report, b: rb.report, comparison });
        const lines = [`B - A, paired on the questions both answered (95 % bootstrap interval); A = ${a}, B = ${b}`, differenceLine('all', comparison.overall)];
        for (const [c, d] of namedCategories(comparison.byCategory)) lines.push(differenceLine(`category ${c}`, d));
        if (comparison.unpaired > 0) lines.push(`  ${comparison.unpaired} questions answered by only one of the two (left out)`);
        return ctx.print(lines.join('\n'));
      }
      if (!argv.model) {
        if (!argv['answers-file'] || !argv.truth) throw new SrfError('INVALID_ARGUMENT', 'give --model (and --mmproj, --questions) to answer, --answers-file with --truth to score, or --compare A B --truth T');
        const score = await scoreAnswersFile(argv['answers-file'], argv.truth, argv.questions);
        if (argv.json) return ctx.event({ event: 'score', ...score.report, answersWithoutTruth: score.answersWithoutTruth, truthWithoutAnswer: score.truthWithoutAnswer });
        return ctx.print(`${argv['answers-file']}\n${scoreText(score)}`);
      }
      const options = evaluateOptions(argv);
      let logged = 0;
      options.onProgress = ({ done, total, errors }) => {
        if (done < logged + Math.max(100, total / 20) && done !== total) return;
        logged = done;
        ctx.log(`answered ${done}/${total}${errors ? ` (${errors} errors)` : ''}`);
      };
      // A GPU box whose CUDA library did not load would answer on the CPU, or JIT-compiles its kernels first: say so.
      for (const note of gpuStartNotes(buildInfo())) ctx.onLog(note.level, note.message);
      const result = await evaluate(options);
      if (argv.json) {
        const { score, ...rest } = result;
        return ctx.event({ event: 'finish', ...rest, ...(score ? { score: score.report, answersWithoutTruth: score.answersWithoutTruth, truthWithoutAnswer: score.truthWithoutAnswer } : {}) });
      }
      const head = `answered ${result.answered} questions in ${result.seconds.toFixed(1)} s (${result.questionsPerSecond.toFixed(2)}/s)${result.resumed ? `, ${result.resumed} already in the file` : ''}${result.errors ? `, ${result.errors} failed (metadata.error)` : ''}\n  ${result.answersFile}`;
      ctx.print(result.score ? `${head}\n${scoreText(result.score)}` : head);
    },
  };
}

interface WorldQuestionsArgs {
  out: string;
  images?: number;
  json: boolean;
}

export function worldQuestionsCommand(ctx: CliContext): CommandModule<object, WorldQuestionsArgs> {
  return {
    command: 'world-questions',
    describe: 'write a held-out question file of the synthetic world with its truth (for `eval` on the demo model)',
    builder: (y: Argv) =>
      y.options({
        out: { type: 'string', demandOption: true, describe: 'folder: images/, questions.jsonl, truth.jsonl' },
        images: { type: 'number', describe: 'held-out scenes, one question of each image family per scene (default 100)' },
        json: { type: 'boolean', default: false, describe: 'print the result as JSON' },
      }) as unknown as Argv<WorldQuestionsArgs>,
    handler: async (argv) => {
      const images = optionalInteger(argv.images, '--images') ?? 100;
      const written = await writeWorldQuestions(argv.out, { images });
      if (argv.json) return ctx.event({ event: 'finish', ...written });
      ctx.print(`wrote ${written.questions} questions on ${written.images} held-out world images\n  ${written.questionsFile}\n  ${written.truthFile}`);
    },
  };
}
