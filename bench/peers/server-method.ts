/**
 * The whole method driven against llama-server, as a user who does not pick srf-native would
 * script it: per image, I->QA sampled with the method's settings and its GBNF reply grammar
 * (temperature 0.7, top-k 40, top-p 0.9, min-p off, 256 tokens, the image's own seed as refine()
 * computes it), the reply parsed and trimmed as refine() does (srf/triangle.ts readQaReply), then
 * IA->Q and IQ->A greedy with EOS on (128 tokens) sent together with the default filter's calls (a
 * letter choice's stem asked open; sampled re-answers, seeded as refine() seeds them, where it has them);
 * follow-ups go before new images, and
 * as many requests are in flight as the server has slots, `cache_prompt` on.
 *
 * Then the same-work check on the same server: srf-native's scored triplets (its journal) replayed as
 * greedy IA->Q (image, A) and IQ->A (image, Q) requests, whose replies must be the text srf-native
 * wrote as Q' and A'.
 */
import path from 'node:path';
import { identifyImage } from '../../lib/jobs/inputs.js';
import { cleanReply } from '../../lib/srf/parse.js';
import { DEFAULT_DECODING, DEFAULT_TEMPLATES, QA_REPLY_GRAMMAR, resolveGrammarBounds, type TaskName } from '../../lib/srf/prompts.js';
import { SAMPLED_REANSWER, imageSeed, readQaReply } from '../../lib/srf/triangle.js';
import type { SamplingOptions } from '../../lib/engine/types.js';
import { openReask } from '../../lib/srf/choices.js';
import { DEFAULT_FILTER, FILTERS } from '../../lib/srf/filters.js';
import { readCpuSeconds } from '../memory.js';
import { PrioritySemaphore, fullPrompt } from '../workload.js';
import { base64Images, completion, startServer, type ServerPeerConfig } from './server.js';
import type { ServerPrompt } from '../family-pairs.js';

interface ServerReply {
  content: string;
  stop_type?: string;
  tokens_predicted?: number;
  timings?: { prompt_n?: number; predicted_n?: number; cache_n?: number };
}

/** A scored triplet of srf-native's journal, to replay. */
export interface ReplayTriplet {
  image: string;
  question: string;
  answer: string;
  questionPrime: string;
  answerPrime: string;
}

export interface SameWork {
  checked: number;
  questionsSame: number;
  answersSame: number;
  /** A few pairs that differ, for the report. */
  examples: { task: 'IA->Q' | 'IQ->A'; srf: string; server: string }[];
}

export interface MethodServerRun {
  seconds: number;
  images: number;
  scored: number;
  rejected: number;
  requests: number;
  promptEvaluated: number;
  promptCached: number;
  generated: number;
  loadSeconds: number;
  peakRssBytes: number;
  cpuSeconds: number;
  command: string;
  sameWork: SameWork;
}

/** LLaVA-1.5's vicuna_v1 prompt: the world model's and the LLaVA shapes'. */
const vicunaPrompt: ServerPrompt = (text, marker) => fullPrompt({ name: 'iqToA', prompt: text, maxTokens: 0 }, marker);

/** The request body of one of the method's calls, with the library's own settings. */
function methodBody(task: TaskName, prompt: string, render: ServerPrompt, marker: string, image: string, seed?: number, sampling: SamplingOptions = DEFAULT_DECODING[task]): Record<string, unknown> {
  const body: Record<string, unknown> = {
    prompt: { prompt_string: render(prompt, marker), multimodal_data: [image] },
    n_predict: sampling.maxTokens,
    temperature: sampling.temperature ?? 0,
    cache_prompt: true,
  };
  if ((sampling.temperature ?? 0) > 0) {
    // llama-server's chain also has min-p 0.05 by default; the method has none.
    Object.assign(body, { top_k: sampling.topK, top_p: sampling.topP, min_p: 0, seed });
  }
  if (task === 'iToQa') body.grammar = QA_REPLY_GRAMMAR;
  return body;
}

/** The calls refine()'s default filter adds to the paper's three. */
const DEFAULT_CALLS = FILTERS[DEFAULT_FILTER];

/** A sampled re-answer of the default filter (triangle.ts SAMPLED_REANSWER), with IQ->A's token budget. */
function sampledBody(prompt: string, render: ServerPrompt, marker: string, image: string, seed: number): Record<string, unknown> {
  return methodBody('iqToA', prompt, render, marker, image, seed, { ...DEFAULT_DECODING.iqToA, ...SAMPLED_REANSWER });
}

/** refine()'s defaults for reading an I->QA reply: answers a bound cut are trimmed; the default grammar's longest line. */
const READ_REPLY = { truncatedAnswers: 'cut', answerLineBound: resolveGrammarBounds().maxAnswerChars } as const;

export async function runServerMethod(
  config: ServerPeerConfig,
  images: string[],
  imageRoot: string,
  replay: ReplayTriplet[],
  log: (l: string) => void,
  /** The model family's prompt rendering (bench/family-pairs.ts); default LLaVA-1.5's vicuna_v1. */
  render: ServerPrompt = vicunaPrompt,
): Promise<MethodServerRun> {
  const server = await startServer(config, log);
  try {
    const base64 = base64Images();
    const totals = { requests: 0, promptEvaluated: 0, promptCached: 0, generated: 0, scored: 0, rejected: 0 };
    // A random-weight model's byte tokens make invalid UTF-8 that the server's reply parser refuses:
    // run.ts bans them with logit_bias for the server (it can only cost the server).
    const withBias = (body: Record<string, unknown>) => (config.logitBias?.length ? { ...body, logit_bias: config.logitBias } : body);
    const call = async (body: Record<string, unknown>): Promise<ServerReply> => {
      const reply = await completion<ServerReply>(server.base, withBias(body));
      totals.requests++;
      totals.promptEvaluated += reply.timings?.prompt_n ?? 0;
      totals.promptCached += reply.timings?.cache_n ?? 0;
      totals.generated += reply.timings?.predicted_n ?? reply.tokens_predicted ?? 0;
      return reply;
    };
    const gate = new PrioritySemaphore(Math.max(1, config.maxInFlight ?? config.parallel));
    const gated = <T>(priority: number, work: () => Promise<T>): Promise<T> => gate.run(priority, work);
    const cpu0 = readCpuSeconds(server.pid) ?? NaN;
    const started = process.hrtime.bigint();
    await Promise.all(
      images.map(async (file) => {
        const image = await base64(file);
        const seed = imageSeed(0, identifyImage(path.relative(imageRoot, file).split(path.sep).join('/')).key);
        const reply = await gated(1, () => call(methodBody('iToQa', DEFAULT_TEMPLATES.iToQaInstruction, render, server.marker, image, seed)));
        const qa = readQaReply(reply.content, reply.stop_type === 'limit' ? 'length' : 'eos', READ_REPLY);
        if (!qa.ok) {
          totals.rejected++;
          return;
        }
        // The default filter's calls too: a letter choice's stem asked open, and its sampled re-answers (if any).
        const open = DEFAULT_CALLS.open ? openReask(qa.question, qa.answer) : null;
        await Promise.all([
          gated(0, () => call(methodBody('iaToQ', DEFAULT_TEMPLATES.iaToQInstruction(qa.answer), render, server.marker, image))),
          gated(0, () => call(methodBody('iqToA', DEFAULT_TEMPLATES.iqToAInstruction(qa.question), render, server.marker, image))),
          ...(open ? [gated(0, () => call(methodBody('iqToA', DEFAULT_TEMPLATES.iqToAInstruction(open.question), render, server.marker, image)))] : []),
          ...Array.from({ length: DEFAULT_CALLS.samples }, (_, i) => gated(0, () => call(sampledBody(DEFAULT_TEMPLATES.iqToAInstruction(qa.question), render, server.marker, image, imageSeed(seed, i + 1))))),
        ]);
        totals.scored++;
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpuSeconds = (readCpuSeconds(server.pid) ?? NaN) - cpu0;
    log(`  llama-server, whole method: ${images.length} images in ${seconds.toFixed(1)} s; replaying ${replay.length} of srf-native's triplets`);
    const sameWork = await replayTriplets(replay, (body) => gated(0, () => completion<ServerReply>(server.base, withBias(body))), render, server.marker, base64);
    return { seconds, images: images.length, ...totals, loadSeconds: server.loadSeconds, peakRssBytes: server.peakRss(), cpuSeconds, command: server.command, sameWork };
  } finally {
    await server.stop();
  }
}

/** srf-native's Q' and A' against the server's greedy replies to the same (image, A) and (image, Q). */
async function replayTriplets(
  replay: ReplayTriplet[],
  send: (body: Record<string, unknown>) => Promise<ServerReply>,
  render: ServerPrompt,
  marker: string,
  base64: (path: string) => Promise<string>,
): Promise<SameWork> {
  const result: SameWork = { checked: 0, questionsSame: 0, answersSame: 0, examples: [] };
  await Promise.all(
    replay.map(async (t) => {
      const image = await base64(t.image);
      const [q, a] = await Promise.all([
        send(methodBody('iaToQ', DEFAULT_TEMPLATES.iaToQInstruction(t.answer), render, marker, image)),
        send(methodBody('iqToA', DEFAULT_TEMPLATES.iqToAInstruction(t.question), render, marker, image)),
      ]);
      result.checked++;
      const serverQ = cleanReply(q.content);
      const serverA = cleanReply(a.content);
      if (serverQ === t.questionPrime) result.questionsSame++;
      else if (result.examples.length < 6) result.examples.push({ task: 'IA->Q', srf: t.questionPrime, server: serverQ });
      if (serverA === t.answerPrime) result.answersSame++;
      else if (result.examples.length < 6) result.examples.push({ task: 'IQ->A', srf: t.answerPrime, server: serverA });
    }),
  );
  return result;
}
