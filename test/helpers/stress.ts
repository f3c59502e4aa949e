/** Runs one case of test/helpers/stress-child.ts in a child process and reports how it ended. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './cli.js';
import type { TestWorld } from './fixtures.js';

export interface CaseResult {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const CHILD = join(ROOT, 'test', 'helpers', 'stress-child.ts');

export function runStressCase(name: string, world: TestWorld, env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CaseResult> {
  const start = Date.now();
  const child = spawn(process.execPath, ['--no-warnings', '--loader', '@isaacs/ts-node-temp-fork-for-pr-2009/esm', CHILD, name], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'), SRF_STRESS_WORLD: JSON.stringify(world), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  // A hang is a failure too: kill it, and say so.
  const timer = setTimeout(() => {
    stderr += `\n[stress] ${name} still running after ${timeoutMs} ms: killed\n`;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - start });
    });
  });
}
