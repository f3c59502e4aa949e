/** Shared by the pipeline and CLI tests: run the CLI in-process or as a child, and make image folders. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { main } from '../../lib/cli/main.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** main(argv) in this process, with stdout/stderr captured and no signal handlers. */
export async function runCli(args: string[]): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const code = await main(args, { stdout, stderr, signals: false, tty: false });
  return { code, stdout: out, stderr: err };
}

const CLI_ENTRY = join(ROOT, 'test', 'helpers', 'cli-entry.ts');

/** The CLI as a child process (TypeScript through the ts-node loader tap uses). */
export function spawnCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: Buffer } = {},
): ChildProcess & { output: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--no-warnings', '--loader', '@isaacs/ts-node-temp-fork-for-pr-2009/esm', CLI_ENTRY, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'), ...options.env },
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  child.stdin?.end(options.stdin);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk) => (out += chunk));
  child.stderr?.on('data', (chunk) => (err += chunk));
  const output = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 128), stdout: out, stderr: err }));
  });
  return Object.assign(child, { output });
}

/** `count` small distinct images (PNG/JPEG), optionally nested, plus broken files. */
export async function writeImages(dir: string, names: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const [i, name] of names.entries()) {
    const file = join(dir, name);
    await mkdir(dirname(file), { recursive: true });
    if (name.includes('broken')) {
      await writeFile(file, 'not an image\n');
    } else {
      const width = 24 + i;
      const height = 20;
      const pixels = Buffer.alloc(width * height * 3);
      for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 5) * 31 + i * 53) % 256;
      const image = sharp(pixels, { raw: { width, height, channels: 3 } });
      await writeFile(file, name.endsWith('.jpg') ? await image.jpeg().toBuffer() : await image.png().toBuffer());
    }
    files.push(file);
  }
  return files;
}

/** Parses every line of a JSONL text; throws naming the line that is not JSON. */
export function parseJsonLines(text: string): unknown[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new Error(`line ${i + 1} is not JSON: ${line.slice(0, 120)}`);
      }
    });
}

/**
 * Fast settings for the tiny model on a busy 2-core machine. --top-k 0: on random weights the 40
 * likeliest tokens almost never end an answer within the tight 40-character bound, so with the
 * default top-k every reply would be cut and rejected.
 */
export const FAST_CLI_ARGS = ['--top-k', '0', '--parallel', '4', '--threads', '1', '--max-question-chars', '40', '--max-answer-chars', '40', '--max-answer-lines', '1', '--max-options', '0', '--max-tokens-qa', '128', '--max-tokens-check', '32', '--progress-interval', '0'];
