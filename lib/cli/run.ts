/** `srf-native run`: unlabeled images in, Triangular-Consistency filtered training data out (and `--demo`). */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { SrfError } from '../errors.js';
import { DEMO_IMAGE_COUNT, DEMO_SETTINGS, writeDemoAssets } from '../jobs/demo.js';
import { JOURNAL_FILE } from '../outputs/journal.js';
import { refine, type RefineOptions, type RefineSummary } from '../jobs/refine.js';
import { resolveShard } from '../jobs/shard-env.js';
import { assertGpuWork, defaultDevices, resolveDevices } from '../engine/devices.js';
import type { QaReplyGrammarOptions } from '../srf/prompts.js';
import { FILTER_NAMES } from '../srf/filters.js';
import { shellCommand, type CliContext } from './context.js';
import { nextStepLines } from './next-steps.js';
import { promptOptionSpecs, promptTemplates, type PromptArgs } from './prompt-options.js';
import { optionalInteger, optionalNumber, parseFormats, parseGpu, parseLoraSpec, parseOpenAiImages } from './options.js';
import { attachProgress } from './progress.js';

interface RunArgs extends PromptArgs {
  model?: string;
  mmproj?: string;
  images?: string;
  rescore?: string;
  out?: string;
  'image-root'?: string;
  'export-images'?: string;
  'image-column'?: string;
  lora?: string[];
  embedder?: string;
  'bertscore-model'?: string;
  'keep-top'?: number;
  filter?: string;
  confidence?: boolean;
  samples?: number;
  'match-mix'?: string;
  format?: string[];
  'merge-with'?: string;
  'merge-image-folder'?: string;
  'openai-images'?: string;
  round?: number;
  seed?: number;
  limit?: number;
  shard?: string;
  parallel?: number;
  ctx?: number;
  'kv-layout'?: string;
  'chat-template'?: string;
  'image-min-tokens'?: number;
  'image-max-tokens'?: number;
  gpu?: string;
  devices?: string;
  'require-gpu'?: boolean;
  threads?: number;
  'prefix-cache'?: number;
  'in-flight'?: number;
  grammar: boolean;
  'max-question-chars'?: number;
  'max-answer-chars'?: number;
  'max-answer-lines'?: number;
  'max-options'?: number;
  temperature?: number;
  'top-p'?: number;
  'top-k'?: number;
  'max-tokens-qa'?: number;
  'max-tokens-check'?: number;
  truncated?: string;
  report: boolean;
  json: boolean;
  demo: boolean;
  'progress-interval': number;
}

const IO = 'Inputs and outputs:';
const MODEL = 'Model:';
const SCORE = 'Scoring and selection:';
const ENGINE = 'Engine:';
const GEN = 'Generation:';
const SHOW = 'Output and progress:';

function builder(y: Argv): Argv<RunArgs> {
  return y
    .usage('$0 run --model TEXT.gguf --mmproj MMPROJ.gguf --images DIR|GLOB|LIST.txt --out DIR [options]\n$0 run --model TEXT.gguf --mmproj MMPROJ.gguf --rescore EARLIER_OUT --out DIR [options]\n$0 run --demo [--out DIR]\n\nGenerates one (question, answer) per image with I->QA, re-predicts Q\' from (I, A) and A\' from (I, Q), scores S = sqrt(sim(Q,Q\') * sim(A,A\')) and keeps the top fraction per data type (--filter: the paper\'s selection or ours; the method, what is the paper\'s and what is ours: docs/METHOD.md in the package). Started again with the same command on the same --out, a run resumes where it stopped.')
    .options({
      images: { group: IO, type: 'string', describe: 'a folder (walked recursively, image files only), a glob such as "photos/**/*.jpg" (quote it), a list file (one path per line, relative to the list\'s folder) or one image; or WebDataset tar shards as img2dataset writes them: a .tar, a glob or range such as "shards/{00000..00279}.tar", a folder of .tar files, or - for one tar on standard input; or parquet files with the image bytes in a column (.parquet, a glob or a folder of them)' },
      rescore: { group: IO, type: 'string', describe: 'instead of --images: an earlier run\'s output folder, whose scored triplets are judged again by this model (their questions and answers kept, no I->QA; IA->Q, IQ->A, scores, selection as any run): how a later round re-judges what an earlier one generated, before `srf-native merge` selects over several runs\' union; the images are that run\'s (--image-root re-roots the outputs, e.g. to a folder that holds both runs\' images)' },
      'image-column': { group: IO, type: 'string', describe: 'parquet inputs: the column holding the image bytes (default jpg, as img2dataset writes it, else image, a Hugging Face image struct\'s bytes)' },
      'export-images': { group: IO, type: 'string', choices: ['all', 'kept', 'none'], describe: 'tar and parquet inputs: which images are written to OUT/images/<shard>/<key>.<ext> for the trainer (the training files\' image root): all scored ones (default; a later select or merge may keep any), only the kept ones, or none' },
      out: { group: IO, type: 'string', describe: 'output folder: triplets.jsonl, train.llava.json, run.json, report.html, train-lora.sh (default ./srf-demo with --demo)' },
      'image-root': { group: IO, type: 'string', describe: 'folder the image paths in the outputs are relative to (LLaVA\'s --image_folder); default: the --images folder, the glob\'s fixed folder or the list\'s folder' },
      shard: { group: IO, type: 'string', describe: 'I/N: process only the images whose relative path hashes to I mod N (0-based), into OUT/shard-I-of-N/; auto: I and N from a Slurm array (SLURM_ARRAY_TASK_*), auto/N: I from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX), N = its completions; join with `srf-native merge OUT`' },
      limit: { group: IO, type: 'number', describe: 'only the first N images (after --shard), in sorted order' },
      format: { group: IO, type: 'string', array: true, describe: 'extra training-data formats besides LLaVA: sharegpt, openai (repeatable or comma-separated)' },
      'merge-with': { group: IO, type: 'string', describe: 'original instruction data (LLaVA JSON, e.g. llava_v1_5_mix665k.json): also write train.merged.llava.json = original + kept' },
      'merge-image-folder': { group: IO, type: 'string', describe: 'folder the --merge-with data\'s image paths are relative to (default: the folder srf-native recorded when it wrote that file, else the file\'s own folder); both are re-based onto their common folder' },
      'openai-images': { group: IO, type: 'string', describe: 'how train.openai.jsonl references images: base64 (default; data URLs, what OpenAI/Together/Fireworks fine-tuning take), url-prefix=https://HOST/PATH (the image root served there), relative, absolute; with base64 and url-prefix, images not in JPEG/PNG/WEBP are left out, with a message' },
      round: { group: IO, type: 'number', describe: 'SRF round, recorded in every kept record and run.json (default 0)' },
      model: { group: MODEL, type: 'string', describe: 'text model GGUF (LLaVA-1.5\'s language model)' },
      mmproj: { group: MODEL, type: 'string', describe: 'vision encoder + projector GGUF (mmproj)' },
      'chat-template': { group: MODEL, type: 'string', describe: "the prompt format instead of the model's own: vicuna_v1 (LLaVA-1.5's), chatml, gguf (the text GGUF's tokenizer.chat_template) or a Jinja template file (default: the family's; `srf-native info --model --mmproj` names it)" },
      'image-min-tokens': { group: MODEL, type: 'number', describe: 'dynamic-resolution families (Qwen-VL): the fewest image tokens an image becomes (default: the mmproj\'s)' },
      'image-max-tokens': { group: MODEL, type: 'number', describe: 'dynamic-resolution families (Qwen-VL): the most image tokens an image becomes (default 1024)' },
      lora: { group: MODEL, type: 'string', array: true, describe: 'LoRA adapter GGUF, FILE[:SCALE] (repeatable); usually the step-1 multi-task generator' },
      embedder: { group: SCORE, type: 'string', describe: 'sentence-embedding GGUF (BERT family) for the cosine similarities; without it scores use a lexical fallback that is NOT the paper\'s measure' },
      'bertscore-model': { group: SCORE, type: 'string', describe: 'encoder GGUF for BERTScore on long text (default: the --embedder)' },
      'keep-top': { group: SCORE, type: 'number', describe: 'fraction kept within each data type (default 0.2, the paper\'s choice; 0.5 with --demo)' },
      filter: { group: SCORE, type: 'string', choices: [...FILTER_NAMES], describe: "refined (default): letter choices judged by option text with an open re-ask, per-type top fraction only at S >= 0.9; refined-agreement: as refined, with 4 sampled re-answers, the places above the floor going to the highest S x their agreement with A; refined-circular: also a rotated-options re-ask; refined-confidence: no floor, ranked by S x the model's own confidence in A and Q (every quota filled); paper: the paper's exact method (docs/METHOD.md)" },
      confidence: { group: SCORE, type: 'boolean', describe: 'also record each triplet\'s mean token log P(A | I, Q) and log P(Q | I, A) in triplets.jsonl (two more calls per image; recorded, not used by the selection)' },
      samples: { group: SCORE, type: 'number', describe: 'answer each question K more times, sampled (temperature 1), and record how far the samples agree with A (`agreement` in triplets.jsonl): K more calls per image, at most 16 (default: 4 with --filter refined-agreement, which ranks by it; else 0)' },
      'match-mix': { group: SCORE, type: 'string', describe: 'second pass: resample the kept set to the type mix of this LLaVA JSON (or a JSON object of weights per type)' },
      parallel: { group: ENGINE, type: 'number', describe: 'sequences the engine decodes together (default 8 on CPU; on a GPU the most of 32, 24, 16 that fit its memory with per-sequence KV; 4 with --demo)' },
      ctx: { group: ENGINE, type: 'number', describe: 'KV cache size in tokens, all sequences together (default: sized from --parallel, --prefix-cache and the longest reply)' },
      'kv-layout': { group: ENGINE, type: 'string', choices: ['auto', 'unified', 'per-sequence'], describe: 'per-sequence: one KV stream per sequence (faster: 2x on an H200, ~25 % on CPU; ~2x KV memory); unified: one shared pool (least memory); auto: per-sequence where it fits in memory, else unified' },
      gpu: { group: ENGINE, type: 'string', describe: 'on (all layers), off (CPU only) or a number of layers to offload (default: all when a GPU is present)' },
      devices: { group: ENGINE, type: 'string', describe: 'one engine replica per device, all fed from the same images, journal and outputs: all (every GPU), GPU numbers as `srf-native info` lists them (0,1), or cpu (cpu,cpu: two CPU replicas); split: one engine over all GPUs (a model no single GPU holds); a replica that fails hands its images to the others (default: all GPUs when there are several, else one engine)' },
      'require-gpu': { group: ENGINE, type: 'boolean', describe: 'fail (exit 2) before any image is read when the work would run on the CPU, saying why (also SRF_REQUIRE_GPU=1)' },
      threads: { group: ENGINE, type: 'number', describe: 'CPU threads (default: every core but one; 0 for every core; 1 with --demo)' },
      'prefix-cache': { group: ENGINE, type: 'number', describe: 'image prefixes kept evaluated in the KV cache (default: --in-flight, so each image is encoded once; lower it to save KV memory)' },
      'in-flight': { group: ENGINE, type: 'number', describe: 'images worked on at once, all replicas together (default: 2 x --parallel x replicas)' },
      seed: { group: GEN, type: 'number', describe: 'base seed of the I->QA sampling; each image adds a number from its path (default 0)' },
      grammar: { group: GEN, type: 'boolean', default: true, describe: 'hold the I->QA reply to "Question: ...\\nAnswer: ..." with a grammar (--no-grammar to switch off)' },
      'max-question-chars': { group: GEN, type: 'number', describe: 'grammar bound: longest question line (default 120; --demo uses its own short grammar unless a bound is given)' },
      'max-answer-chars': { group: GEN, type: 'number', describe: 'grammar bound: longest answer line (default 1000); a reply a bound stops (this, or --max-tokens-qa) is cut back to its last full sentence and marked "truncated" in triplets.jsonl' },
      'max-answer-lines': { group: GEN, type: 'number', describe: 'grammar bound: most answer lines (paragraphs; default 8, as step-1 targets include multi-paragraph answers)' },
      'max-options': { group: GEN, type: 'number', describe: 'grammar bound: most multiple-choice option lines (default 4)' },
      temperature: { group: GEN, type: 'number', describe: 'I->QA sampling temperature (default 0.7; the re-predictions are greedy)' },
      'top-p': { group: GEN, type: 'number', describe: 'I->QA nucleus sampling (default 0.9)' },
      'top-k': { group: GEN, type: 'number', describe: 'I->QA candidates kept before top-p (default 40, as llama.cpp; 0 = the whole vocabulary)' },
      'max-tokens-qa': { group: GEN, type: 'number', describe: 'new tokens for the I->QA reply (default 256)' },
      'max-tokens-check': { group: GEN, type: 'number', describe: 'new tokens for each re-prediction, IA->Q and IQ->A (default 128, LLaVA\'s evaluation default)' },
      truncated: { group: GEN, type: 'string', choices: ['cut', 'keep'], describe: 'an I->QA reply a bound stopped (--max-tokens-qa, --max-answer-chars): cut its answer back to the last full sentence, rejecting it when none is left (default), or keep it as it stopped; both mark it "truncated" in triplets.jsonl' },
      ...promptOptionSpecs(GEN),
      report: { group: SHOW, type: 'boolean', default: true, describe: 'write report.html (--no-report to skip)' },
      json: { group: SHOW, type: 'boolean', default: false, describe: 'events as JSON lines on stdout (start, image, progress, finish); logs stay on stderr' },
      'progress-interval': { group: SHOW, type: 'number', default: 10, describe: 'seconds between progress lines when stderr is not a terminal' },
      demo: { type: 'boolean', default: false, describe: 'write a tiny generated model, embedder and images into --out and run the whole pipeline on them (no downloads, seconds)' },
    })
    .check((argv) => {
      if (!argv.demo) {
        // --rescore (an earlier run's triplets) stands in for --images
        const missing = ['model', 'mmproj', 'images', 'out'].filter((key) => argv[key] === undefined && !(key === 'images' && argv.rescore !== undefined));
        if (missing.length > 0) throw new SrfError('INVALID_ARGUMENT', `run needs ${missing.map((m) => `--${m}`).join(', ')} (or --demo)`);
        if (argv.images !== undefined && argv.rescore !== undefined) throw new SrfError('INVALID_ARGUMENT', 'run takes --images or --rescore (an earlier run\'s folder), not both');
      }
      return true;
    })
    .example('$0 run --demo', 'the whole pipeline on generated data, in seconds')
    .example('$0 run --model llava-v1.5-7b-f16.gguf --mmproj mmproj-f16.gguf --lora srf-multitask-lora.gguf --embedder bge-small-en-v1.5-f16.gguf --images photos/ --out srf-round0', 'one round on a folder of photos')
    .example('$0 run --model round1.gguf --mmproj mmproj.gguf --rescore srf-round0 --out srf-round0-rejudged', 'round 1\'s model judges round 0\'s triplets again')
    .example('$0 run ... --shard auto --out /shared/out', 'one task of a Slurm array (sbatch --array=0-7) writes /shared/out/shard-I-of-8/; then `srf-native merge /shared/out`') as unknown as Argv<RunArgs>;
}

function grammarBounds(argv: RunArgs): QaReplyGrammarOptions {
  const bounds: QaReplyGrammarOptions = {};
  const q = optionalInteger(argv['max-question-chars'], '--max-question-chars');
  const a = optionalInteger(argv['max-answer-chars'], '--max-answer-chars');
  const o = optionalInteger(argv['max-options'], '--max-options');
  const lines = optionalInteger(argv['max-answer-lines'], '--max-answer-lines');
  if (lines !== undefined) bounds.maxAnswerLines = lines;
  if (q !== undefined) bounds.maxQuestionChars = q;
  if (a !== undefined) bounds.maxAnswerChars = a;
  if (o !== undefined) bounds.maxOptions = o;
  return bounds;
}

async function buildOptions(argv: RunArgs, ctx: CliContext): Promise<RefineOptions> {
  const demo = argv.demo;
  // option values are checked before the demo writes anything
  const gpu = parseGpu(argv.gpu);
  if (argv.shard !== undefined) resolveShard(argv.shard);
  if (argv.devices !== undefined) resolveDevices(argv.devices);
  assertGpuWork({ requireGpu: argv['require-gpu'], gpuLayers: gpu.gpuLayers, devices: argv.devices ?? defaultDevices(gpu.gpuLayers) });
  const loras = argv.lora?.map(parseLoraSpec);
  const formats = argv.format ? parseFormats(argv.format) : undefined;
  const openaiImages = parseOpenAiImages(argv['openai-images']);
  let base: Pick<RefineOptions, 'model' | 'mmproj' | 'images' | 'out'> & Partial<RefineOptions>;
  if (demo) {
    const out = argv.out ?? 'srf-demo';
    ctx.log(`demo: the world model (a tiny LLaVA-1.5 and BERT embedder trained on a synthetic world) and ${DEMO_IMAGE_COUNT} held-out world images (one broken on purpose) into ${out}`);
    const assets = await writeDemoAssets(out);
    base = {
      model: argv.model ?? assets.model,
      mmproj: argv.mmproj ?? assets.mmproj,
      images: argv.images ?? assets.images,
      out,
      embedder: argv.embedder ?? assets.embedder,
      mergeWith: argv['merge-with'] ?? assets.original,
      formats: formats ?? ['sharegpt', 'openai'],
      keepTop: argv['keep-top'] ?? DEMO_SETTINGS.keepTop,
      parallel: argv.parallel ?? DEMO_SETTINGS.parallel,
      threads: argv.threads ?? 1,
      decoding: DEMO_SETTINGS.decoding,
    };
  } else {
    base = { model: argv.model as string, mmproj: argv.mmproj as string, ...(argv.rescore !== undefined ? { rescore: argv.rescore } : { images: argv.images as string }), out: argv.out as string };
  }
  const bounds = grammarBounds(argv);
  // The demo passes its grammar (DEMO_GRAMMAR) unless the grammar is switched off or bounded by hand.
  const grammar = !argv.grammar ? false : demo && Object.keys(bounds).length === 0 ? DEMO_SETTINGS.grammar : true;
  const options: RefineOptions = { ...base, grammar, grammarBounds: bounds, report: argv.report, command: ['run', ...ctx.argv.slice(ctx.argv.indexOf('run') + 1)] };
  const set = <K extends keyof RefineOptions>(key: K, value: RefineOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  if (!demo) {
    set('embedder', argv.embedder);
    set('mergeWith', argv['merge-with']);
    set('formats', formats);
    set('keepTop', optionalNumber(argv['keep-top'], '--keep-top'));
    set('parallel', optionalInteger(argv.parallel, '--parallel'));
    set('threads', optionalInteger(argv.threads, '--threads'));
  }
  set('loras', loras);
  set('filter', argv.filter as RefineOptions['filter']);
  set('confidence', argv.confidence);
  set('samples', optionalInteger(argv.samples, '--samples'));
  const decoding: NonNullable<RefineOptions['decoding']> = { ...(options.decoding ?? {}) };
  const temperature = optionalNumber(argv.temperature, '--temperature');
  const topP = optionalNumber(argv['top-p'], '--top-p');
  const topK = optionalInteger(argv['top-k'], '--top-k');
  const qaTokens = optionalInteger(argv['max-tokens-qa'], '--max-tokens-qa');
  const checkTokens = optionalInteger(argv['max-tokens-check'], '--max-tokens-check');
  if (temperature !== undefined || topP !== undefined || topK !== undefined || qaTokens !== undefined) {
    decoding.iToQa = {
      ...decoding.iToQa,
      ...(temperature !== undefined ? { temperature } : {}),
      ...(topP !== undefined ? { topP } : {}),
      ...(topK !== undefined ? { topK } : {}),
      ...(qaTokens !== undefined ? { maxTokens: qaTokens } : {}),
    };
  }
  if (checkTokens !== undefined) {
    decoding.iaToQ = { ...decoding.iaToQ, maxTokens: checkTokens };
    decoding.iqToA = { ...decoding.iqToA, maxTokens: checkTokens };
  }
  if (Object.keys(decoding).length > 0) options.decoding = decoding;
  set('templates', promptTemplates(argv));
  set('bertscoreModel', argv['bertscore-model']);
  set('imageRoot', argv['image-root']);
  set('exportImages', argv['export-images'] as RefineOptions['exportImages']);
  set('imageColumn', argv['image-column']);
  set('matchMix', argv['match-mix']);
  set('mergeImageFolder', argv['merge-image-folder']);
  set('openaiImages', openaiImages);
  set('round', optionalInteger(argv.round, '--round'));
  set('seed', optionalInteger(argv.seed, '--seed'));
  set('limit', optionalInteger(argv.limit, '--limit'));
  set('shard', argv.shard);
  set('contextSize', optionalInteger(argv.ctx, '--ctx'));
  set('kvLayout', argv['kv-layout'] as RefineOptions['kvLayout']);
  set('truncatedAnswers', argv.truncated as RefineOptions['truncatedAnswers']);
  set('prefixCache', optionalInteger(argv['prefix-cache'], '--prefix-cache'));
  set('inFlight', optionalInteger(argv['in-flight'], '--in-flight'));
  set('devices', argv.devices);
  set('requireGpu', argv['require-gpu']);
  set('gpuLayers', gpu.gpuLayers);
  set('gpuVision', gpu.gpuVision);
  const imageMinTokens = optionalInteger(argv['image-min-tokens'], '--image-min-tokens');
  const imageMaxTokens = optionalInteger(argv['image-max-tokens'], '--image-max-tokens');
  if (argv['chat-template'] !== undefined || imageMinTokens !== undefined || imageMaxTokens !== undefined) {
    options.engine = {
      ...options.engine,
      ...(argv['chat-template'] !== undefined ? { chatTemplate: argv['chat-template'] } : {}),
      ...(imageMinTokens !== undefined ? { imageMinTokens } : {}),
      ...(imageMaxTokens !== undefined ? { imageMaxTokens } : {}),
    };
  }
  return options;
}

function printSummary(summary: RefineSummary, ctx: CliContext): void {
  const c = summary.counts;
  const rel = (file: string) => path.join(path.relative(process.cwd(), summary.out) || '.', file);
  const lines = [
    `${summary.status === 'complete' ? 'done' : 'interrupted'} in ${summary.seconds.total.toFixed(1)} s: ${c.images} images (${c.scored} scored, ${c.rejected} rejected, ${c.errors} error${c.errors === 1 ? '' : 's'}; ${summary.processed} this session, ${summary.resumed} from before), ${c.kept} kept — ${summary.selection.policy}`,
  ];
  if (!summary.paperFaithful) lines.push(`WARNING: ${summary.manifest.scoring?.warning ?? "scores are not the paper's"}`);
  lines.push(`  ${rel(summary.outputs.journal)}  one line per image`);
  for (const [format, file] of Object.entries(summary.outputs.train)) lines.push(`  ${rel(file)}  ${format}: ${c.kept - (summary.outputs.dropped?.[file]?.count ?? 0)} kept triplets`);
  if (summary.outputs.merged) lines.push(`  ${rel(summary.outputs.merged)}  original + kept (images relative to ${summary.outputs.mergedImageRoot})`);
  lines.push(`  ${rel('run.json')}  models, hashes, parameters, counts (image paths relative to ${summary.manifest.imageRoot})`);
  if (summary.outputs.report) lines.push(`  ${rel(summary.outputs.report)}  histograms and examples`);
  if (summary.outputs.trainScript) lines.push(`  ${rel(summary.outputs.trainScript)}  LLaVA LoRA fine-tuning + conversion back to GGUF`);
  if (summary.status === 'complete') lines.push(...nextStepLines(summary.out, summary.manifest));
  ctx.print(lines.join('\n'));
}

async function handler(argv: RunArgs, ctx: CliContext): Promise<number> {
  const options = await buildOptions(argv, ctx);
  const mode = argv.json ? 'json' : ctx.tty ? 'tty' : 'plain';
  const run = refine({ ...options, progressIntervalMs: mode === 'tty' ? 200 : 1000 });
  attachProgress(run, ctx, mode, Math.max(0, (optionalNumber(argv['progress-interval'], '--progress-interval') ?? 10) * 1000));
  const resume = shellCommand(ctx.argv);
  let presses = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    presses++;
    if (presses === 1) {
      ctx.log(`${signal === 'SIGINT' ? 'Ctrl-C' : signal}: stopping — images in flight are abandoned (they run again on resume), outputs are written for what is done. Press Ctrl-C again to exit at once.`);
      run.cancel();
    } else {
      ctx.log(`exiting now; ${JOURNAL_FILE} is valid. To resume: ${resume}`);
      process.exit(130);
    }
  };
  if (ctx.signals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  if (argv.json) ctx.event({ event: 'start', out: path.resolve(options.out), options: { ...options, command: undefined } });
  try {
    const summary = await run.result;
    if (argv.json) {
      ctx.event({
        event: 'finish',
        status: summary.status,
        out: summary.out,
        counts: summary.counts,
        selection: summary.selection,
        outputs: summary.outputs,
        paperFaithful: summary.paperFaithful,
        seconds: summary.seconds,
        imagesPerSecond: summary.imagesPerSecond,
        resumed: summary.resumed,
        processed: summary.processed,
      });
    } else {
      printSummary(summary, ctx);
    }
    if (summary.status === 'interrupted') {
      ctx.log(`interrupted with ${summary.counts.images} images done. To resume, run the same command: ${resume}`);
      return 130;
    }
    return 0;
  } finally {
    if (ctx.signals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

export function runCommand(ctx: CliContext): CommandModule<object, RunArgs> {
  return {
    command: 'run',
    describe: 'unlabeled images in, Triangular-Consistency filtered training data out (--demo: on generated data)',
    builder,
    handler: async (argv) => {
      ctx.exitCode = await handler(argv, ctx);
    },
  };
}
