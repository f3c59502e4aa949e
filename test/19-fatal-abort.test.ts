// llama.cpp aborts the process on a CUDA fault (GGML_ABORT): srf-native cannot stop that, but its
// hook makes the end say which engine and what to do, and writes the journal's buffered lines
// first. Reached on the CPU through SRF_FAILPOINTS=ggml-abort@N (native/failpoints.h).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ROOT, spawnCli } from './helpers/cli.js';
import { makeWorld, tempDir } from './helpers/fixtures.js';

t.test('an abort in the engine thread writes the journal\'s buffered lines and says where it happened', async (t) => {
  const world = await makeWorld(1);
  const journal = join(await tempDir(), 'triplets.jsonl');
  const child = spawn(process.execPath, ['--no-warnings', '--loader', '@isaacs/ts-node-temp-fork-for-pr-2009/esm', join(ROOT, 'test', 'helpers', 'fatal-abort-child.ts'), journal, world.model, world.mmproj, world.images[0]!], {
    cwd: ROOT,
    env: { ...process.env, SRF_FAILPOINTS: 'ggml-abort@1' },
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => (stdout += d));
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  t.equal(signal, 'SIGABRT', `the process ends as llama.cpp ends it (code ${code}); stdout: ${stdout}`);
  t.match(stderr, /srf-native: llama\.cpp stopped the process on cpu: .*failpoint ggml-abort/, 'it says which engine');
  t.match(stderr, /every image finished before this is in the output folder's journal; run the same command again to resume/);
  const lines = (await readFile(journal, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { id: string });
  t.same(lines.map((l) => l.id), ['line-0', 'line-1', 'line-2'], 'the buffered lines reached the disk, whole');
});

t.test('a run aborted by llama.cpp mid-way resumes with nothing lost or repeated', async (t) => {
  const dir = await tempDir();
  const out = join(dir, 'out');
  const first = await spawnCli(['run', '--demo', '--out', out], { env: { SRF_FAILPOINTS: 'ggml-abort@110' } }).output;
  t.not(first.code, 0, 'the process was aborted');
  t.match(first.stderr, /srf-native: llama\.cpp stopped the process on the engine: .*failpoint ggml-abort/);
  const before = (await readFile(join(out, 'triplets.jsonl'), 'utf8')).trim().split('\n').filter(Boolean);
  t.ok(before.length > 1 && before.every((l) => JSON.parse(l).id), `${before.length} whole lines before the abort`);
  const second = await spawnCli(['run', '--demo', '--out', out]).output;
  t.equal(second.code, 0, second.stderr);
  const after = (await readFile(join(out, 'triplets.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { id: string });
  const ids = after.map((l) => l.id);
  t.equal(new Set(ids).size, ids.length, 'no image twice');
  t.equal(ids.length, 16, 'every demo image once');
});
