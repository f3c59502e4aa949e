/**
 * `npm run bench -- --workload eval`: `srf-native eval` (evaluate(), bench/peers/eval.ts) against
 * the same questions answered through llama-server with the same slots, greedy, 128 tokens, EOS on,
 * as many requests in flight as slots, `cache_prompt` on, and against LLaVA's own one-at-a-time loop
 * as it runs here, one llama-mtmd-cli process per question, on the first --cli-images questions; on
 * the world's held-out question file (lib/world/questions.ts). The answers are compared question by
 * question (the same work: the same text). Prints `srf-native eval / llama-server: R` and
 * `/ llama-mtmd-cli per question: R` in questions/s; srf-native's seconds include its model load,
 * the server's do not, mtmd-cli's include a load per question (that is what that loop costs).
 */
import { writeFile } from 'node:fs/promises';
import path, { join } from 'node:path';
import { readAnswers, readQuestions } from '../lib/jobs/eval/files.js';
import { writeWorldQuestions } from '../lib/world/questions.js';
import type { EvalPeerConfig } from './peers/eval.js';
import { askWithCli } from './peers/cli.js';
import { base64Images, completion, startServer } from './peers/server.js';
import { readCpuSeconds } from './memory.js';
import { fmt, markdownTable } from './table.js';
import { PrioritySemaphore, fullPrompt } from './workload.js';
import { PRINTABLE_ASCII_GRAMMAR, familyImageArgs, familyServerPrompt, type BenchFamily } from './family-pairs.js';

export interface EvalBenchSettings {
  work: string;
  serverBinary: string;
  cliBinary: string;
  /** Questions answered by llama-mtmd-cli, one process each (the first of the file). */
  cliQuestions: number;
  model: string;
  mmproj: string;
  images: number;
  imageTokens: number;
  parallel: number;
  threads: number;
  batch: number;
  flashAttn: 'on' | 'off' | 'auto';
  gpuLayers: number;
  /**
   * A model family's tiny random-weight pair instead of the world model (`model`, `mmproj` are it):
   * the server gets the family's own prompt rendering and image options, and both sides the same
   * printable-ASCII grammar (random weights emit byte tokens llama-server cannot return).
   */
  family?: BenchFamily;
}

type RunChild = (configPath: string, peer: string) => Promise<Record<string, any>>;

const MAX_TOKENS = 128;

export async function runEvalBench(s: EvalBenchSettings, runChild: RunChild, log: (line: string) => void): Promise<{ ratio: number; lines: string[] }> {
  const set = await writeWorldQuestions(join(s.work, 'eval-questions'), { images: s.images });
  const questions = await readQuestions(set.questionsFile);
  log(`srf-native eval: ${questions.length} questions on ${s.images} world images, parallel ${s.parallel}${s.family ? `, the ${s.family} tiny pair` : ''}`);
  // The server's prompt: LLaVA-1.5's vicuna_v1 for the world model, else the family's own rendering
  // (the engine's, which bench/family-parity.ts holds equal to llama-server's --jinja).
  let serverPrompt = (text: string, marker: string) => fullPrompt({ name: 'iqToA', prompt: text, maxTokens: MAX_TOKENS }, marker);
  if (s.family) serverPrompt = await familyServerPrompt({ model: s.model, mmproj: s.mmproj });
  const grammar = s.family ? { grammar: PRINTABLE_ASCII_GRAMMAR } : {};
  const config: EvalPeerConfig = {
    model: s.model,
    mmproj: s.mmproj,
    questions: set.questionsFile,
    imageFolder: set.imageFolder,
    answersFile: join(s.work, 'eval-answers.jsonl'),
    parallel: s.parallel,
    threads: s.threads,
    gpuLayers: s.gpuLayers,
    ...grammar,
  };
  const configPath = join(s.work, 'eval-peer.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const srf = await runChild(configPath, 'eval');
  const srfRate = srf.answered / srf.seconds;
  log(`  ${fmt(srfRate, 1)} questions/s (${srf.answered} in ${fmt(srf.seconds, 1)} s, load included)`);

  log(`llama-server: the same ${questions.length} questions, ${s.parallel} slots`);
  const server = await startServer(
    {
      binary: s.serverBinary,
      model: s.model,
      mmproj: s.mmproj,
      parallel: s.parallel,
      contextSize: s.parallel * (s.imageTokens + 64 + 256),
      kvUnified: false,
      threads: s.threads,
      batchSize: s.batch,
      flashAttention: s.flashAttn,
      gpuLayers: s.gpuLayers,
      logFile: join(s.work, 'llama-server-eval.log'),
      ...(s.family ? { extraArgs: familyImageArgs(s.family) } : {}),
    },
    log,
  );
  const serverAnswers = new Map<string, string>();
  let seconds: number;
  let cpuSeconds: number;
  try {
    const base64 = base64Images();
    const gate = new PrioritySemaphore(s.parallel);
    const cpu0 = readCpuSeconds(server.pid) ?? NaN;
    const started = process.hrtime.bigint();
    await Promise.all(
      questions.map(async (q) => {
        const image = await base64(path.resolve(set.imageFolder, q.image));
        const body = { prompt: { prompt_string: serverPrompt(q.text, server.marker), multimodal_data: [image] }, n_predict: MAX_TOKENS, temperature: 0, cache_prompt: true, ...grammar };
        const reply = await gate.run(0, () => completion<{ content: string }>(server.base, body));
        serverAnswers.set(q.questionId, reply.content.trim());
      }),
    );
    seconds = Number(process.hrtime.bigint() - started) / 1e9;
    cpuSeconds = (readCpuSeconds(server.pid) ?? NaN) - cpu0;
  } finally {
    await server.stop();
  }
  const serverRate = questions.length / seconds;
  log(`  ${fmt(serverRate, 1)} questions/s`);
  const srfAnswers = await readAnswers(config.answersFile);
  let same = 0;
  const differing: string[] = [];
  for (const [id, text] of serverAnswers) {
    const ours = srfAnswers.get(id)?.text;
    if (ours === text) same++;
    else if (differing.length < 3) {
      // Where they part: long replies often share a long prefix.
      let at = 0;
      while (ours !== undefined && at < ours.length && at < text.length && ours[at] === text[at]) at++;
      const from = Math.max(0, at - 20);
      differing.push(`${id}: from character ${at}, srf ${JSON.stringify(ours?.slice(from, at + 40))} vs server ${JSON.stringify(text.slice(from, at + 40))}`);
    }
  }
  // LLaVA's model_vqa loop: one question at a time, here one llama-mtmd-cli process per question.
  // With --family, bench/family-parity.ts compares each family with llama-mtmd-cli (its chat mode).
  const subset = s.family ? [] : questions.slice(0, s.cliQuestions);
  if (subset.length > 0) log(`llama-mtmd-cli per question: the first ${subset.length} questions`);
  const cliStarted = process.hrtime.bigint();
  let cliSame = 0;
  let cliCommand = '';
  for (const q of subset) {
    const reply = await askWithCli(
      { binary: s.cliBinary, model: s.model, mmproj: s.mmproj, threads: s.threads, batchSize: s.batch, flashAttention: s.flashAttn, gpuLayers: s.gpuLayers },
      path.resolve(set.imageFolder, q.image),
      q.text,
      MAX_TOKENS,
    );
    cliCommand ||= reply.command;
    if (reply.text === srfAnswers.get(q.questionId)?.text) cliSame++;
  }
  const cliSeconds = Number(process.hrtime.bigint() - cliStarted) / 1e9;
  const cliRate = subset.length / cliSeconds;
  if (subset.length > 0) log(`  ${fmt(cliRate, 2)} questions/s`);
  const ratio = srfRate / serverRate;
  const lines = [
    markdownTable(
      ['peer', 'questions', 'wall s', 'questions/s', 'CPU s/question'],
      [
        ['srf-native eval', String(srf.answered), fmt(srf.seconds, 1), fmt(srfRate, 1), fmt(srf.cpuSeconds / srf.answered, 3)],
        ['llama-server (script)', String(questions.length), fmt(seconds, 1), fmt(serverRate, 1), fmt(cpuSeconds / questions.length, 3)],
        ['llama-mtmd-cli per question', String(subset.length), fmt(cliSeconds, 1), fmt(cliRate, 2), ''],
      ],
    ),
    '',
    `srf-native eval / llama-server: ${ratio.toFixed(2)}; srf-native eval / llama-mtmd-cli per question: ${subset.length > 0 ? (srfRate / cliRate).toFixed(1) : 'not run'}`,
    '',
    `- same work: the same answer text as srf-native for ${same} of ${serverAnswers.size} questions through llama-server${differing.length ? ` (differing, e.g. ${differing.join('; ')})` : ''}, and for ${cliSame} of ${subset.length} through llama-mtmd-cli${s.family ? ' (not run with --family: bench/family-parity.ts compares each family with it)' : ''}`,
    ...(s.family ? [`- model: the ${s.family} tiny random-weight pair; the server's prompt is the family's own rendering, image options \`${familyImageArgs(s.family).join(' ') || 'none'}\`; both sides held to printable ASCII (\`${PRINTABLE_ASCII_GRAMMAR}\`)`] : []),
    `- srf-native eval: evaluate() as \`srf-native eval\` runs it (greedy, ${MAX_TOKENS} tokens), its wall includes loading the model; answers written to ${config.answersFile}`,
    `- llama-mtmd-cli: one process per question (a model load each), greedy, EOS on, ${MAX_TOKENS} tokens; command: \`${cliCommand}\``,
    `- llama-server: ${s.parallel} slots, ${s.parallel} requests in flight, cache_prompt on, greedy, ${MAX_TOKENS} tokens; load ${fmt(server.loadSeconds, 1)} s not counted; command: \`${server.command}\``,
  ];
  return { ratio, lines };
}
