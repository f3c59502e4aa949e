/**
 * Parity of the model families with llama.cpp itself: for each tiny family fixture, the prompt
 * llama-server renders with --jinja (POST /apply-template) against the family's own rendering, and
 * greedy replies (token ids, so byte tokens of random weights cannot break the comparison) from
 * llama-server /completion against the engine's, same files, same pixels (lossless PNGs, which the
 * engine decodes with sharp and the server with stb_image to the same RGB), parallel 1 on both sides.
 *
 *   node dist/bench/family-parity.js --server build-source/bin/llama-server [--family qwen2.5-vl ...] [--images 6]
 *
 * Run it with SRF_NATIVE_ADDON=build-source/Release/srf_native.node so that the engine and the
 * server run the same llama.cpp build (the default addon links the prebuilt libraries, whose CPU
 * kernels round differently). Prints one line per family and writes nothing else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { FIXTURE_FAMILIES, writeFamilyPair, writeLlava16Pair, writeMobileVlmPair, type FixtureFamily } from '../fixtures/gguf/family-fixtures.js';
import { VisionModel } from '../lib/index.js';

/**
 * Both sides hold replies to printable ASCII: random weights otherwise emit byte tokens that are not
 * valid UTF-8, on which llama-server's output parser fails the request (LLAMA-CPP-NOTES.md). The same
 * grammar on both sides keeps the comparison fair.
 */
const ASCII_GRAMMAR = 'root ::= [ -~\\n]*';

const QUESTIONS = ['What is in the picture?', 'Describe the colours.', 'How many objects are there?', 'Where is the light coming from?'];

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startServer(binary: string, pair: { model: string; mmproj: string }, extra: string[]): Promise<{ base: string; child: ChildProcess }> {
  const port = await freePort();
  const args = ['-m', pair.model, '--mmproj', pair.mmproj, '--jinja', '--port', String(port), '--host', '127.0.0.1', '-np', '1', '-c', '4096', '-t', '1', '--temp', '0', '--no-warmup', '-ngl', '0', ...extra];
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llama-server exited (${child.exitCode}): ${log}`);
    if (Date.now() > deadline) throw new Error(`llama-server did not start: ${log}`);
    try {
      if ((await fetch(`${base}/health`)).ok) return { base, child };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function post(base: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json).slice(0, 400)}`);
  return json;
}

async function writeImages(dir: string, count: number): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    // Non-square, sizes that are no multiple of any patch size.
    const width = 37 + 23 * i;
    const height = 29 + 11 * ((i * 5) % 7);
    const pixels = Buffer.alloc(width * height * 3);
    for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 3) * 29 + i * 71 + (p % width) * 3) % 256;
    const file = join(dir, `img${i}.png`);
    await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toFile(file);
    files.push(file);
  }
  return files;
}

/**
 * The families that prompt with LLaVA's own vicuna_v1 (their GGUFs carry no template). llama.cpp has no
 * renderer of that exact text (its built-in "vicuna" puts each turn on its own line, LLaVA's
 * conversation joins them with spaces), so their prompt line is not a comparison: the server is given
 * the engine's prompt text and the replies are compared.
 */
const VICUNA_FAMILIES = ['llava-1.6', 'mobilevlm'] as const;
type ParityFamily = FixtureFamily | (typeof VICUNA_FAMILIES)[number];

function writePair(dir: string, family: ParityFamily): Promise<{ model: string; mmproj: string }> {
  if (family === 'llava-1.6') return writeLlava16Pair(dir, { seed: 1 });
  if (family === 'mobilevlm') return writeMobileVlmPair(dir, { seed: 1 });
  return writeFamilyPair(dir, family, { seed: 1 });
}

async function parity(family: ParityFamily, binary: string, images: string[], dir: string): Promise<string> {
  const pair = await writePair(join(dir, 'models'), family);
  const vicuna = (VICUNA_FAMILIES as readonly string[]).includes(family);
  const dynamic = family.startsWith('qwen');
  const { base, child } = await startServer(binary, pair, dynamic ? ['--image-max-tokens', '1024'] : []);
  await using model = await VisionModel.open({ ...pair, parallel: 1, prefixCache: 1, threads: 1, kvLayout: 'unified' });
  try {
    const marker = ((await (await fetch(`${base}/props`)).json()) as { media_marker: string }).media_marker;
    let samePrompt = 0;
    let sameReply = 0;
    let total = 0;
    const differences: string[] = [];
    for (const [i, image] of images.entries()) {
      const question = QUESTIONS[i % QUESTIONS.length]!;
      const dataUrl = `data:image/png;base64,${(await readFile(image)).toString('base64')}`;
      const messages = [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl } }, { type: 'text', text: question }] }];
      const ours = model.info.family.renderPrompt(question).replace('<image>', marker);
      const rendered = vicuna ? ours : String((await post(base, '/apply-template', { messages })).prompt);
      if (rendered === ours) samePrompt++;
      else differences.push(`prompt ${i}: server ${JSON.stringify(rendered)} vs engine ${JSON.stringify(ours)}`);
      const server = await post(base, '/completion', {
        prompt: { prompt_string: rendered, multimodal_data: [dataUrl.slice(dataUrl.indexOf(',') + 1)] },
        n_predict: 16,
        temperature: 0,
        return_tokens: true,
        cache_prompt: false,
        grammar: ASCII_GRAMMAR,
      });
      const engine = await model.generate({ image, prompt: question, sampling: { maxTokens: 16, grammar: ASCII_GRAMMAR } });
      // The server lists the end token it stopped on; the engine's reply excludes it (finishReason 'eos').
      const serverTokens = ((server.tokens as number[]) ?? []).slice(0, server.stop_type === 'eos' ? -1 : undefined);
      if ((server.stop_type === 'eos') !== (engine.finishReason === 'eos')) differences.push(`reply ${i}: server stopped on ${String(server.stop_type)}, engine on ${engine.finishReason}`);
      if (JSON.stringify(serverTokens) === JSON.stringify(engine.tokens)) sameReply++;
      else differences.push(`reply ${i}: server [${serverTokens.join(',')}] vs engine [${engine.tokens.join(',')}] (prompt tokens server ${String((server.timings as { prompt_n?: number })?.prompt_n)} / engine ${engine.prefixTokens + engine.promptTokens})`);
      total++;
    }
    const promptPart = vicuna ? 'prompt: not applicable (LLaVA\'s own vicuna_v1; the server is given the engine\'s text)' : `same prompt text as llama-server --jinja for ${samePrompt} of ${total}`;
    const line = `${family}: ${promptPart}; same greedy tokens for ${sameReply} of ${total}`;
    return differences.length ? `${line}\n  ${differences.slice(0, 4).join('\n  ')}` : line;
  } finally {
    child.kill('SIGTERM');
  }
}

const binary = flag('server');
if (!binary) throw new Error('--server PATH/llama-server is required');
const families = (flag('family')?.split(',') ?? [...FIXTURE_FAMILIES, ...VICUNA_FAMILIES]) as ParityFamily[];
const dir = await mkdtemp(join(tmpdir(), 'srf-family-parity-'));
try {
  const images = await writeImages(dir, Number(flag('images') ?? 6));
  for (const family of families) console.log(await parity(family, binary, images, dir));
} finally {
  await rm(dir, { recursive: true, force: true });
}
