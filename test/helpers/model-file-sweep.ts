/**
 * Damaged model files, one tensor at a time: every tensor of a GGUF renamed (one letter of its name
 * changed, so the file is otherwise intact) and with its first dimension halved, each variant opened
 * and asked once. The child (model-file-sweep-child.ts) runs the cases in order and prints a line
 * before and after each; a case it started and never ended killed it, and the parent goes on from the
 * next case in a new child.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readGgufInfo } from '../../lib/gguf/reader.js';
import { ROOT } from './cli.js';

export type SweepKind = 'mmproj' | 'model' | 'embedder';
export type Damage = 'renamed' | 'halved';

export interface SweepCase {
  kind: SweepKind;
  tensor: string;
  damage: Damage;
}

export interface SweepFiles {
  model: string;
  mmproj: string;
  embedder: string;
  image: string;
}

/** Every case for the tensors of `file`, in file order. */
export async function sweepCases(kind: SweepKind, file: string): Promise<SweepCase[]> {
  const info = await readGgufInfo(file);
  return info.tensors.flatMap((t) => (['renamed', 'halved'] as const).map((damage) => ({ kind, tensor: t.name, damage })));
}

/**
 * The file's bytes with one tensor damaged in its tensor-info entry: the name's last letter changed
 * (same length, so every offset stays), or ne[0] halved (the data stays where it was).
 */
export async function damagedCopy(file: string, tensor: string, damage: Damage): Promise<Buffer> {
  const bytes = Buffer.from(await readFile(file));
  const info = await readGgufInfo(file);
  const name = Buffer.from(tensor, 'utf8');
  const entry = Buffer.alloc(8 + name.length);
  entry.writeBigUInt64LE(BigInt(name.length));
  name.copy(entry, 8);
  // Tensor infos are the last thing before the data section: the last match before it is the entry.
  const at = bytes.lastIndexOf(entry, info.dataOffset);
  if (at < 0) throw new Error(`${file}: no tensor-info entry for ${tensor}`);
  const nameAt = at + 8;
  if (damage === 'renamed') {
    const last = nameAt + name.length - 1;
    bytes[last] = bytes[last] === 0x78 /* x */ ? 0x79 : 0x78;
  } else {
    const dimsAt = nameAt + name.length + 4; // after u32 n_dims
    const ne0 = bytes.readBigUInt64LE(dimsAt);
    bytes.writeBigUInt64LE(ne0 / 2n, dimsAt);
  }
  return bytes;
}

export interface SweepOutcome {
  case: SweepCase;
  /** 'reply', an SrfError code, another error's message, or 'signal SIGSEGV' (the process died). */
  result: string;
}

const CHILD = join(ROOT, 'test', 'helpers', 'model-file-sweep-child.ts');

/** Runs the cases in as few children as possible, starting a new one after each death. */
export async function runSweep(cases: readonly SweepCase[], files: SweepFiles, workDir: string): Promise<SweepOutcome[]> {
  const outcomes: SweepOutcome[] = [];
  let next = 0;
  while (next < cases.length) {
    const { lines, code, signal, stderr } = await runChild(cases.slice(next), files, workDir);
    let done = 0;
    for (const line of lines) {
      const m = /^END (\d+) (.*)$/.exec(line);
      if (!m) continue;
      outcomes.push({ case: cases[next + Number(m[1])]!, result: m[2]! });
      done = Number(m[1]) + 1;
    }
    if (done < cases.length - next) {
      outcomes.push({ case: cases[next + done]!, result: signal ? `signal ${signal}` : `exit ${code}: ${stderr.slice(-500)}` });
      done++;
    }
    next += done;
  }
  return outcomes;
}

function runChild(cases: readonly SweepCase[], files: SweepFiles, workDir: string): Promise<{ lines: string[]; code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, ['--no-warnings', '--loader', '@isaacs/ts-node-temp-fork-for-pr-2009/esm', CHILD], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'), SRF_SWEEP: JSON.stringify({ cases, files, workDir }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ lines: stdout.split('\n'), code, signal, stderr });
    });
  });
}
