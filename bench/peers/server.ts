/**
 * The good "by hand" peer: llama.cpp's `llama-server` with N parallel slots, driven over HTTP the
 * way a careful script would: per image, I->QA first, then IA->Q and IQ->A concurrently, many
 * images in flight (up to N requests), on `/completion` with the image as `multimodal_data` and
 * the server's own media marker (GET /props) in the prompt. Started on 127.0.0.1 with a free port,
 * stopped afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fullPrompt, runTriplets, type Task, type TripletRun } from '../workload.js';
import { readCpuSeconds, watchPeakRss } from '../memory.js';
import { computeFlags, shellQuote } from './cli.js';

export interface ServerPeerConfig {
  binary: string;
  model: string;
  mmproj: string;
  parallel: number;
  /** Total KV cells (-c); split across the slots unless kvUnified. */
  contextSize: number;
  kvUnified: boolean;
  threads: number;
  batchSize: number;
  flashAttention: 'on' | 'off' | 'auto';
  gpuLayers: number;
  /** Concurrent HTTP requests (default parallel). */
  maxInFlight?: number;
  /** Token id -> bias, sent with every request (e.g. [[id, false], ...] bans). */
  logitBias?: [number, number | false][];
  /** Where the server's log goes. */
  logFile: string;
  /** More options, last (a model family's image options: bench/family-pairs.ts). */
  extraArgs?: string[];
}

export interface ServerRun extends TripletRun {
  loadSeconds: number;
  peakRssBytes: number;
  /** User + system CPU seconds the server used during the run (all its threads). */
  cpuSeconds: number;
  /** Prompt tokens the server reported as taken from its cache. */
  promptCached: number;
  command: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitHealthy(base: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`llama-server exited with ${child.exitCode} while loading`);
    try {
      const res = await fetch(`${base}/health`);
      if (res.ok) return;
      await res.arrayBuffer();
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`llama-server did not become healthy within ${timeoutMs / 1000} s`);
}

/** SIGTERM, SIGKILL after 10 s if it has not exited, and wait for its exit. */
export function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function serverArgs(config: ServerPeerConfig, port: number): string[] {
  return [
    '-m', config.model,
    '--mmproj', config.mmproj,
    '--host', '127.0.0.1',
    '--port', String(port),
    '-np', String(config.parallel),
    '-c', String(config.contextSize),
    config.kvUnified ? '--kv-unified' : '--no-kv-unified',
    ...computeFlags(config),
    ...(config.extraArgs ?? []),
  ];
}

/** A running llama-server: where it listens, its media marker, and how to stop it. */
export interface RunningServer {
  base: string;
  marker: string;
  loadSeconds: number;
  pid: number;
  command: string;
  /** Peak RSS so far, and stops watching it. */
  peakRss(): number;
  stop(): Promise<void>;
}

/** Starts llama-server on a free local port and waits until it serves. */
export async function startServer(config: ServerPeerConfig, log: (l: string) => void): Promise<RunningServer> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = serverArgs(config, port);
  const out = createWriteStream(config.logFile);
  const t0 = Date.now();
  const child = spawn(config.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const watcher = watchPeakRss(child.pid ?? 0, 100);
  const shutDown = async () => {
    watcher.stop();
    await stop(child);
    out.end();
  };
  try {
    await waitHealthy(base, child, 600_000);
    const loadSeconds = (Date.now() - t0) / 1000;
    const props = (await (await fetch(`${base}/props`)).json()) as { media_marker?: string };
    const marker = props.media_marker;
    if (!marker) throw new Error('llama-server /props has no media_marker');
    log(`  llama-server up on port ${port} in ${loadSeconds.toFixed(1)} s (media marker ${JSON.stringify(marker)})`);
    return { base, marker, loadSeconds, pid: child.pid ?? 0, command: [config.binary, ...args].map(shellQuote).join(' '), peakRss: () => watcher.stop(), stop: shutDown };
  } catch (error) {
    await shutDown();
    throw error;
  }
}

/** One POST /completion; the parsed reply, or an error with the server's words. */
export async function completion<T>(base: string, body: Record<string, unknown>): Promise<T> {
  const res = await fetch(`${base}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`llama-server /completion failed (${res.status}): ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

/** Each image file's bytes as base64, read once however many requests send it. */
export function base64Images(): (path: string) => Promise<string> {
  const encoded = new Map<string, Promise<string>>();
  return (path: string) => {
    let p = encoded.get(path);
    if (!p) {
      p = readFile(path).then((b) => b.toString('base64'));
      encoded.set(path, p);
    }
    return p;
  };
}

export async function runServerPeer(config: ServerPeerConfig, images: string[], log: (l: string) => void): Promise<ServerRun> {
  const server = await startServer(config, log);
  try {
    const base64 = base64Images();
    let promptCached = 0;
    const send = async (image: string, task: Task) => {
      const body: Record<string, unknown> = {
        prompt: { prompt_string: fullPrompt(task, server.marker), multimodal_data: [await base64(image)] },
        n_predict: task.maxTokens,
        temperature: 0,
        ignore_eos: true,
        cache_prompt: true,
      };
      if (config.logitBias?.length) body.logit_bias = config.logitBias;
      const reply = await completion<{ tokens_predicted?: number; timings?: { prompt_n?: number; predicted_n?: number; cache_n?: number } }>(server.base, body);
      const generated = reply.timings?.predicted_n ?? reply.tokens_predicted ?? 0;
      if (generated !== task.maxTokens) throw new Error(`llama-server generated ${generated} tokens instead of ${task.maxTokens}`);
      promptCached += reply.timings?.cache_n ?? 0;
      return { promptEvaluated: reply.timings?.prompt_n ?? 0, generated };
    };
    const cpu0 = readCpuSeconds(server.pid) ?? NaN;
    const run = await runTriplets(images, config.maxInFlight ?? config.parallel, send);
    const cpuSeconds = (readCpuSeconds(server.pid) ?? NaN) - cpu0;
    return { ...run, cpuSeconds, loadSeconds: server.loadSeconds, peakRssBytes: server.peakRss(), promptCached, command: server.command };
  } finally {
    await server.stop();
  }
}
