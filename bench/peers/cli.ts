/**
 * The naive "by hand" peer: llama.cpp's `llama-mtmd-cli`, three runs per image, one after
 * another, as a script around the command line would do it. Each run loads the model, encodes
 * the image, evaluates the whole prompt and generates a fixed number of tokens.
 *
 * The prompt is passed whole (system text, `USER: <__media__>\n...`, ` ASSISTANT:`) through a
 * pass-through Jinja chat template, so that the model sees exactly srf-native's token sequence
 * (mtmd-cli always applies a chat template, and its built-in `vicuna` one differs from LLaVA-1.5's).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullPrompt, TASKS, type RequestResult, type Task } from '../workload.js';
import { watchPeakRss } from '../memory.js';

/** The compute settings every llama.cpp peer gets, from one place so both run alike. */
export function computeFlags(config: { threads: number; batchSize: number; flashAttention: string; gpuLayers: number }): string[] {
  return [
    '-t', String(config.threads),
    '-tb', String(config.threads),
    '-b', String(config.batchSize),
    '-ub', String(config.batchSize),
    '-fa', config.flashAttention,
    '-ngl', String(config.gpuLayers),
  ];
}

export const PASS_THROUGH_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}";

export interface CliPeerConfig {
  binary: string;
  model: string;
  mmproj: string;
  threads: number;
  batchSize: number;
  flashAttention: 'on' | 'off' | 'auto';
  gpuLayers: number;
  /** Extra arguments (e.g. logit biases). */
  extraArgs?: string[];
}

export interface CliRun {
  seconds: number;
  triplets: number;
  requests: number;
  promptEvaluated: number;
  generated: number;
  peakRssBytes: number;
  /** User + system CPU seconds of all the runs (GNU time), or NaN without /usr/bin/time. */
  cpuSeconds: number;
  /** Runs whose perf counters were lost in llama.cpp's log (their prompt count is the previous run's). */
  countersLost: number;
  /** One example command line, for the record. */
  command: string;
}

function cliArgs(config: CliPeerConfig, image: string, task: Task): string[] {
  return [
    '-m', config.model,
    '--mmproj', config.mmproj,
    '--image', image,
    '--jinja', '--chat-template', PASS_THROUGH_TEMPLATE,
    '-p', fullPrompt(task, '<__media__>'),
    '-n', String(task.maxTokens),
    '--ignore-eos',
    '--temp', '0',
    ...computeFlags(config),
    '-v', // llama_perf_context_print's counters are logged at debug verbosity only
    ...(config.extraArgs ?? []),
  ];
}

/** Shell-quotes one argument for the printed command line. */
export function shellQuote(arg: string): string {
  if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
  // Newlines as bash $'...\n...', so that a command stays on one line (and one Markdown line).
  if (arg.includes('\n')) return `$'${arg.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One run's figures; promptEvaluated is undefined when llama.cpp's counters were lost. */
type CliRunResult = Omit<RequestResult, 'promptEvaluated'> & { promptEvaluated: number | undefined; peakRssBytes: number; cpuSeconds: number };

function runOnce(config: CliPeerConfig, image: string, task: Task): Promise<CliRunResult> {
  const args = cliArgs(config, image, task);
  // GNU time gives the exact peak RSS of the child; without it, /proc polling.
  const timeFile = join(tmpdir(), `srf-bench-time-${process.pid}-${Date.now()}.txt`);
  const useTime = existsSync('/usr/bin/time');
  const cmd = useTime ? '/usr/bin/time' : config.binary;
  const argv = useTime ? ['-f', '%M %U %S', '-o', timeFile, config.binary, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const watcher = watchPeakRss(child.pid ?? 0);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let peak = watcher.stop();
      let cpuSeconds = NaN;
      if (useTime && existsSync(timeFile)) {
        const [kb, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        if (Number.isFinite(kb) && kb > 0) peak = kb * 1024;
        cpuSeconds = user + sys;
        rmSync(timeFile, { force: true });
      }
      if (code !== 0) {
        reject(new Error(`llama-mtmd-cli exited with ${code}:\n${(stderr + stdout).split('\n').slice(-25).join('\n')}`));
        return;
      }
      const all = stderr + stdout;
      // llama_perf_context_print: "prompt eval time = X ms / N tokens", "eval time = X ms / M runs".
      const prompt = /prompt eval time =\s*[\d.]+ ms \/\s*(\d+) tokens/.exec(all);
      const evals = /\seval time =\s*[\d.]+ ms \/\s*(\d+) runs/.exec(all);
      if (!prompt || !evals) {
        // llama.cpp's log thread sometimes loses its last lines when a short run exits: the run
        // itself succeeded (exit 0, -n with --ignore-eos), only its counters are missing, and
        // runCliPeer fills the prompt count in from the same task's other runs.
        resolve({ promptEvaluated: undefined, generated: task.maxTokens, peakRssBytes: peak, cpuSeconds });
        return;
      }
      // The first generated token comes from the prompt's logits: runs = tokens - 1.
      const generated = Number(evals[1]) + 1;
      if (generated !== task.maxTokens) {
        reject(new Error(`llama-mtmd-cli generated ${generated} tokens instead of ${task.maxTokens}`));
        return;
      }
      resolve({ promptEvaluated: Number(prompt[1]), generated, peakRssBytes: peak, cpuSeconds });
    });
  });
}

/** The arguments of one greedy question with EOS on, as LLaVA's one-at-a-time loop asks it. */
function questionArgs(config: CliPeerConfig, image: string, prompt: string, maxTokens: number): string[] {
  return [
    '-m', config.model,
    '--mmproj', config.mmproj,
    '--image', image,
    '--jinja', '--chat-template', PASS_THROUGH_TEMPLATE,
    '-p', fullPrompt({ name: 'iqToA', prompt, maxTokens }, '<__media__>'),
    '-n', String(maxTokens),
    '--temp', '0',
    ...computeFlags(config),
    ...(config.extraArgs ?? []),
  ];
}

/** One question answered by its own llama-mtmd-cli process: the reply it prints, and the command. */
export function askWithCli(config: CliPeerConfig, image: string, prompt: string, maxTokens: number): Promise<{ text: string; command: string }> {
  const args = questionArgs(config, image, prompt, maxTokens);
  return new Promise((resolve, reject) => {
    const child = spawn(config.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`llama-mtmd-cli exited with ${code}:\n${stderr.split('\n').slice(-15).join('\n')}`));
      else resolve({ text: stdout.trim(), command: [config.binary, ...args].map(shellQuote).join(' ') });
    });
  });
}

/** Three sequential runs per image, images one after another. */
export async function runCliPeer(config: CliPeerConfig, images: string[], log: (l: string) => void): Promise<CliRun> {
  const totals = { requests: 0, promptEvaluated: 0, generated: 0, peakRssBytes: 0, cpuSeconds: 0 };
  const counted = new Map<string, number[]>(); // prompt counts read, per task
  const lost = new Map<string, number>(); // runs per task whose counters were lost
  const started = process.hrtime.bigint();
  for (const [i, image] of images.entries()) {
    for (const task of [TASKS.iToQa, TASKS.iaToQ, TASKS.iqToA]) {
      const r = await runOnce(config, image, task);
      totals.requests++;
      if (r.promptEvaluated === undefined) lost.set(task.name, (lost.get(task.name) ?? 0) + 1);
      else counted.set(task.name, [...(counted.get(task.name) ?? []), r.promptEvaluated]);
      totals.promptEvaluated += r.promptEvaluated ?? 0;
      totals.generated += r.generated;
      totals.peakRssBytes = Math.max(totals.peakRssBytes, r.peakRssBytes);
      totals.cpuSeconds += r.cpuSeconds;
    }
    log(`  mtmd-cli: image ${i + 1}/${images.length}`);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let countersLost = 0;
  for (const [name, runs] of lost) {
    countersLost += runs;
    // A task's prompt is the same text for every image: its other runs' mean; none read: unknown.
    const known = counted.get(name) ?? [];
    totals.promptEvaluated += known.length ? (runs * known.reduce((a, b) => a + b, 0)) / known.length : NaN;
  }
  const command = [config.binary, ...cliArgs(config, images[0] ?? 'IMAGE', TASKS.iToQa)].map(shellQuote).join(' ');
  return { seconds, triplets: images.length, ...totals, countersLost, command };
}
