/**
 * Why the eval benchmark's --family answers differ from llama-server's where they do: every question
 * of the world's held-out file is answered by both at parallel 1 (the server without its prompt cache),
 * greedy, 128 tokens, printable ASCII, and for each reply that differs the engine scores both replies
 * up to the token where they part (scoreDraft): the log-probabilities of the server's token and of its
 * own there. A gap of the order of rounding (1e-4 nats) on random weights' near-uniform distributions
 * is a near-tie argmax flip, not a different prompt or image.
 *
 *   node dist/bench/family-ties.js --server build-source/bin/llama-server --family gemma3 [--images 6]
 *
 * With SRF_NATIVE_ADDON=build-source/Release/srf_native.node, as bench/family-parity.ts. Prints one
 * line per differing question and a summary; writes nothing else.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { readQuestions } from '../lib/jobs/eval/files.js';
import { VisionModel } from '../lib/index.js';
import { writeWorldQuestions } from '../lib/world/questions.js';
import { PRINTABLE_ASCII_GRAMMAR, familyImageArgs, isBenchFamily, writeBenchFamilyPair } from './family-pairs.js';
import { startServer } from './peers/server.js';

const MAX_TOKENS = 128;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const binary = flag('server');
const family = flag('family') ?? '';
if (!binary || !isBenchFamily(family)) throw new Error('--server PATH/llama-server and --family NAME are required');
const dir = await mkdtemp(join(tmpdir(), 'srf-family-ties-'));
try {
  const pair = await writeBenchFamilyPair(join(dir, 'models'), family);
  const set = await writeWorldQuestions(join(dir, 'questions'), { images: Number(flag('images') ?? 6) });
  const questions = await readQuestions(set.questionsFile);
  const server = await startServer(
    { binary, ...pair, parallel: 1, contextSize: 4096, kvUnified: false, threads: 1, batchSize: 512, flashAttention: 'off', gpuLayers: 0, logFile: join(dir, 'server.log'), extraArgs: familyImageArgs(family) },
    () => {},
  );
  await using model = await VisionModel.open({ ...pair, threads: 1, parallel: 1 });
  const gaps: number[] = [];
  let same = 0;
  let endsFirst = 0;
  try {
    for (const q of questions) {
      const image = path.resolve(set.imageFolder, q.image);
      const prompt = model.info.family.renderPrompt(q.text).replace('<image>', server.marker);
      const body = { prompt: { prompt_string: prompt, multimodal_data: [(await readFile(image)).toString('base64')] }, n_predict: MAX_TOKENS, temperature: 0, cache_prompt: false, return_tokens: true, grammar: PRINTABLE_ASCII_GRAMMAR };
      const res = await fetch(`${server.base}/completion`, { method: 'POST', body: JSON.stringify(body) });
      const reply = (await res.json()) as { tokens: number[]; stop_type: string };
      if (!res.ok) throw new Error(`/completion: ${res.status} ${JSON.stringify(reply).slice(0, 300)}`);
      const theirs = reply.stop_type === 'eos' ? reply.tokens.slice(0, -1) : reply.tokens;
      const ours = (await model.generate({ image, prompt: q.text, sampling: { maxTokens: MAX_TOKENS, grammar: PRINTABLE_ASCII_GRAMMAR } })).tokens;
      let k = 0;
      while (k < theirs.length && k < ours.length && theirs[k] === ours[k]) k++;
      if (k === theirs.length && k === ours.length) {
        same++;
        continue;
      }
      if (k === theirs.length || k === ours.length) {
        endsFirst++;
        console.log(`${q.questionId}: the same tokens until one reply ends (server ${theirs.length}, engine ${ours.length})`);
        continue;
      }
      const logP = async (tokens: number[]) => (await model.generate({ image, prompt: q.text, draft: tokens.slice(0, k + 1), scoreDraft: true, sampling: { maxTokens: k + 1 } })).draftLogProbs![k]!;
      const server_ = await logP(theirs);
      const engine = await logP(ours);
      gaps.push(engine - server_);
      console.log(`${q.questionId}: part at token ${k}: the engine's log P of the server's token ${theirs[k]} ${server_.toFixed(6)}, of its own ${ours[k]} ${engine.toFixed(6)} (gap ${(engine - server_).toExponential(2)})`);
    }
  } finally {
    await server.stop();
  }
  gaps.sort((a, b) => a - b);
  const summary = gaps.length ? `; the ${gaps.length} others part where the two tokens' log P differ by ${gaps[0]!.toExponential(1)} to ${gaps[gaps.length - 1]!.toExponential(1)} nats (median ${gaps[Math.floor(gaps.length / 2)]!.toExponential(1)})` : '';
  console.log(`${family}: the same ${MAX_TOKENS}-token greedy reply as llama-server at parallel 1 for ${same} of ${questions.length}${endsFirst ? `, ${endsFirst} alike until one ends` : ''}${summary}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
