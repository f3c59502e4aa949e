/**
 * Parity of the model families with llama.cpp itself: for each tiny family fixture, the prompt
 * llama-server renders with --jinja (POST /apply-template) against the family's own rendering;
 * greedy replies (token ids, so byte tokens of random weights cannot break the comparison) from
 * llama-server /completion against the engine's; and llama-mtmd-cli's printed greedy reply on the
 * same files and image against the engine's reply text. Same files, same pixels (lossless PNGs, which
 * the engine decodes with sharp and the tools with stb_image to the same RGB), parallel 1 everywhere.
 *
 *   node dist/bench/family-parity.js --server build-source/bin/llama-server [--mtmd-cli PATH] [--family qwen2.5-vl ...] [--images 6]
 *
 * --mtmd-cli defaults to llama-mtmd-cli beside the server (`cmake --build build-source --target
 * llama-mtmd-cli`, or bench/tools.ts's ensureTools). Run it with
 * SRF_NATIVE_ADDON=build-source/Release/srf_native.node so that the engine and the tools run the
 * same llama.cpp build (the default addon links the prebuilt libraries, whose CPU kernels round
 * differently). Prints one line per family and writes nothing else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { BENCH_FAMILIES, PRINTABLE_ASCII_GRAMMAR, VICUNA_FAMILIES, familyImageArgs, writeBenchFamilyPair, type BenchFamily } from './family-pairs.js';
import { VisionModel } from '../lib/index.js';
import { stop as stopServer } from './peers/server.js';

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

/** What llama-mtmd-cli prints on stdout right before it evaluates the prompt (its test hook), so its reply is what follows. */
const REPLY_MARKER = '@@srf-family-parity-reply@@';

/**
 * llama-mtmd-cli's greedy reply to one image and question, as it prints it, in its chat mode: the
 * image (`/image PATH`) and the question are typed on stdin, and what it prints between the reply
 * marker and its next input prompt is "\n" (the prompt was evaluated), each token's piece (special
 * tokens as their text), and "\n" if it stopped on an end-of-generation token (tools/mtmd/mtmd-cli.cpp).
 * Not its single-turn mode (-p): its output goes through common_log's worker thread, which llama.cpp
 * leaks on purpose at exit (common/log.cpp common_log_main: "logs may be lost if not flushed before the
 * program exits"), and on these 2 cores most single-turn runs lost the tail of their reply. In chat
 * mode it waits for the next line, so the reply is whole once the input prompt follows it.
 */
function mtmdCliReply(binary: string, pair: { model: string; mmproj: string }, image: string, question: string, args: string[]): Promise<string> {
  const child = spawn(
    binary,
    ['-m', pair.model, '--mmproj', pair.mmproj, '-n', '16', '--temp', '0', '--grammar', PRINTABLE_ASCII_GRAMMAR, '-c', '4096', '-t', '1', '-ngl', '0', '--no-warmup', ...args],
    { env: { ...process.env, MTMD_TEST_RESPONSE_MARKER: REPLY_MARKER }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (error: Error | undefined, reply?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdin.end('/quit\n');
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else resolve(reply as string);
    };
    const timer = setTimeout(() => finish(new Error(`llama-mtmd-cli gave no whole reply in 120 s: ${stdout.slice(-400)} ${stderr.slice(-400)}`)), 120_000);
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.stdout.on('data', (d) => {
      stdout += d;
      const at = stdout.indexOf(`${REPLY_MARKER}\n`);
      if (at >= 0 && stdout.endsWith('\n> ')) finish(undefined, stdout.slice(at + REPLY_MARKER.length + 1, -'\n> '.length));
    });
    child.on('error', (error) => finish(error));
    child.on('exit', (code) => finish(new Error(`llama-mtmd-cli exited (${code}) before a whole reply: ${stderr.slice(-400)}`)));
    child.stdin.on('error', () => {}); // an early exit is reported by 'exit'
    child.stdin.write(`/image ${image}\n${question}\n`);
  });
}

/** The media marker llama-mtmd-cli's prompt takes (mtmd_default_marker()). */
const MTMD_MARKER = '<__media__>';

/** A Jinja string literal (llama.cpp's Jinja reads JSON's escapes). */
const jinjaString = (text: string) => JSON.stringify(text);

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

// The vicuna_v1 families' prompt line is not a comparison (llama.cpp has no renderer of LLaVA's exact
// text, bench/family-pairs.ts): the server is given the engine's prompt text and the replies are compared.

async function parity(family: BenchFamily, binary: string, mtmdCli: string, images: string[], dir: string): Promise<string> {
  const pair = await writeBenchFamilyPair(join(dir, 'models'), family);
  const vicuna = (VICUNA_FAMILIES as readonly string[]).includes(family);
  const imageTokenOptions = familyImageArgs(family);
  const { base, child } = await startServer(binary, pair, imageTokenOptions);
  await using model = await VisionModel.open({ ...pair, parallel: 1, prefixCache: 1, threads: 1, kvLayout: 'unified' });
  try {
    const marker = ((await (await fetch(`${base}/props`)).json()) as { media_marker: string }).media_marker;
    let samePrompt = 0;
    let sameReply = 0;
    let sameCliText = 0;
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
        grammar: PRINTABLE_ASCII_GRAMMAR,
      });
      const engine = await model.generate({ image, prompt: question, sampling: { maxTokens: 16, grammar: PRINTABLE_ASCII_GRAMMAR } });
      // The server lists the end token it stopped on; the engine's reply excludes it (finishReason 'eos').
      const serverTokens = ((server.tokens as number[]) ?? []).slice(0, server.stop_type === 'eos' ? -1 : undefined);
      if ((server.stop_type === 'eos') !== (engine.finishReason === 'eos')) differences.push(`reply ${i}: server stopped on ${String(server.stop_type)}, engine on ${engine.finishReason}`);
      if (JSON.stringify(serverTokens) === JSON.stringify(engine.tokens)) sameReply++;
      else differences.push(`reply ${i}: server [${serverTokens.join(',')}] vs engine [${engine.tokens.join(',')}] (prompt tokens server ${String((server.timings as { prompt_n?: number })?.prompt_n)} / engine ${engine.prefixTokens + engine.promptTokens})`);
      // llama-mtmd-cli always renders a chat template and has no raw-prompt path; its user message is
      // the media marker followed by the typed line. A templated family gets its GGUF's template
      // (--jinja). LLaVA's vicuna_v1 is no template llama.cpp has (its "vicuna" puts turns on lines of
      // their own), so those families get a fixed Jinja template holding the engine's exact prompt text.
      const [before, after] = model.info.family.renderPrompt(question).split('<image>') as [string, string];
      const cliArgs = vicuna ? ['--jinja', '--chat-template', `{{ ${jinjaString(before + MTMD_MARKER + after)} }}`] : ['--jinja'];
      const printed = await mtmdCliReply(mtmdCli, pair, image, question, [...cliArgs, ...imageTokenOptions]);
      // The engine's reply as mtmd-cli prints one: its tokens' pieces, special tokens as text (the
      // server's /detokenize, the same common_token_to_piece), "\n" after an end token.
      const engineText = String((await post(base, '/detokenize', { tokens: engine.tokens })).content);
      const expected = `\n${engineText}${engine.finishReason === 'eos' ? '\n' : ''}`;
      if (printed === expected) sameCliText++;
      else differences.push(`mtmd-cli ${i}: printed ${JSON.stringify(printed)} vs engine ${JSON.stringify(expected)} (finish ${engine.finishReason})`);
      total++;
    }
    const promptPart = vicuna ? 'prompt: not applicable (LLaVA\'s own vicuna_v1; the server is given the engine\'s text)' : `same prompt text as llama-server --jinja for ${samePrompt} of ${total}`;
    const cliPart = `same greedy text as llama-mtmd-cli for ${sameCliText} of ${total}${vicuna ? ' (mtmd-cli has no raw-prompt path: it was given the engine\'s vicuna_v1 prompt text as a fixed --jinja --chat-template)' : ''}`;
    const line = `${family}: ${promptPart}; same greedy tokens as llama-server for ${sameReply} of ${total}; ${cliPart}`;
    return differences.length ? `${line}\n  ${differences.slice(0, 4).join('\n  ')}` : line;
  } finally {
    await stopServer(child);
  }
}

const binary = flag('server');
if (!binary) throw new Error('--server PATH/llama-server is required');
const mtmdCli = flag('mtmd-cli') ?? join(dirname(binary), 'llama-mtmd-cli');
if (!existsSync(mtmdCli)) throw new Error(`${mtmdCli} is missing: build it (cmake --build build-source --target llama-mtmd-cli) or pass --mtmd-cli PATH`);
const families = (flag('family')?.split(',') ?? [...BENCH_FAMILIES]) as BenchFamily[];
const dir = await mkdtemp(join(tmpdir(), 'srf-family-parity-'));
try {
  const images = await writeImages(dir, Number(flag('images') ?? 6));
  for (const family of families) console.log(await parity(family, binary, mtmdCli, images, dir));
} finally {
  await rm(dir, { recursive: true, force: true });
}
