/**
 * What a resume costs at scale (issue 35): the start-up time and peak memory of opening a journal of
 * N lines, the way `srf-native run` does before its first image (every line read and checked, its id
 * kept), for growing N. The lines are synthetic but of real size: a scored tar-shard sample with its
 * question, answer, re-predictions, scores and img2dataset metadata (~0.8 kB). Each size is opened in
 * a fresh child process, so its peak resident memory is its own.
 *
 *     node dist/bench/resume.js [--lines 100000,300000,1000000] [--record]
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { appendFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { mib, watchPeakRss } from './memory.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');

function syntheticLine(i: number): string {
  const key = String(i % 10_000).padStart(9, '0');
  const shard = String(Math.floor(i / 10_000)).padStart(5, '0');
  return JSON.stringify({
    id: `${shard}/${key}`,
    image: `${shard}/${key}.jpg`,
    round: 0,
    metadata: { json: { key, url: `https://images.example.org/photos/${shard}/${key}.jpg`, caption: 'A red double-decker bus parked beside a stone building on a rainy afternoon', width: 640, height: 480 }, txt: 'A red double-decker bus parked beside a stone building on a rainy afternoon' },
    status: 'scored',
    question: 'What color is the bus parked beside the building?',
    answer: 'The bus is red, a double-decker parked on the street next to a stone building.',
    questionPrime: 'What is the color of the bus near the building?',
    answerPrime: 'It is red.',
    type: 'short-answer',
    simQ: 0.8123456789,
    simA: 0.6123456789,
    score: 0.7052345678,
    paperFaithful: true,
    seed: 123456789 + i,
    ms: 2345,
  });
}

async function writeJournal(file: string, lines: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < lines; i++) if (!out.write(`${syntheticLine(i)}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

/** Opens the journal in a child process as a run does; its time and peak RSS. */
function openInChild(file: string): Promise<{ seconds: number; peakMiB: number; ids: number }> {
  const code = `import('${join(ROOT, 'dist', 'lib', 'outputs', 'journal.js')}').then(async ({ Journal }) => {
    const start = performance.now();
    const journal = await Journal.open(${JSON.stringify(file)});
    console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000, ids: journal.ids.size }));
    await journal.close();
  })`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const peak = watchPeakRss(child.pid as number, 20);
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (status) => {
      const peakBytes = peak.stop();
      if (status !== 0) return reject(new Error(`the child exited with ${status}`));
      const result = JSON.parse(out.trim()) as { seconds: number; ids: number };
      resolve({ ...result, peakMiB: mib(peakBytes) });
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--lines');
  const sizes = (at >= 0 ? (args[at + 1] ?? '') : '100000,300000,1000000').split(',').map(Number);
  const dir = await mkdtemp(join(tmpdir(), 'srf-resume-bench-'));
  const rows: string[] = ['| journal lines | file | resume start-up | peak RSS | ids kept |', '|---:|---:|---:|---:|---:|'];
  try {
    for (const lines of sizes) {
      const file = join(dir, `triplets-${lines}.jsonl`);
      await writeJournal(file, lines);
      const { size } = await stat(file);
      const r = await openInChild(file);
      rows.push(`| ${lines.toLocaleString('en')} | ${mib(size).toFixed(0)} MiB | ${r.seconds.toFixed(2)} s | ${r.peakMiB.toFixed(0)} MiB | ${r.ids.toLocaleString('en')} |`);
      console.error(rows.at(-1));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const table = rows.join('\n');
  console.log(table);
  if (args.includes('--record')) {
    await appendFile(join(ROOT, 'bench', 'RESULTS.md'), `\n## Resume at scale (\`node dist/bench/resume.js\`), ${new Date().toISOString().slice(0, 10)}\n\n${table}\n`);
  }
}

await main();
