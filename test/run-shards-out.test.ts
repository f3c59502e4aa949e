import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { identifyImage } from '../lib/jobs/inputs.js';
import { LOCK_FILE } from '../lib/outputs/lock.js';
import { refine } from '../lib/jobs/refine.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { readJournal as lines, tinyRun } from './helpers/tiny-run.js';

const manifest = async (out: string) => JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));

async function world() {
  // 50 images a shard: enough that a shard killed after its first journal line is still running on a quiet machine.
  const names = Array.from({ length: 150 }, (_, i) => `p${i}.png`);
  const { dir, models, base } = await tinyRun(names);
  const cli = ['run', '--model', models.model, '--mmproj', models.mmproj, '--images', join(dir, 'images'), '--out', join(dir, 'out'), '--threads', '1', '--max-question-chars', '40', '--max-answer-chars', '40', '--max-tokens-qa', '48', '--max-tokens-check', '24', '--no-report'];
  return { dir, names, base, cli, out: join(dir, 'out') };
}

/** Runs fn with these environment variables set, restoring them after. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

t.test('merge OUT joins complete shards, reports unfinished and missing ones, and joins the rest once a preempted shard resumes', async (t) => {
  const { names, cli, out } = await world();
  const ids = names.map((n) => identifyImage(n).id).sort();
  // shards 0 and 1 of 3 through the CLI with --shard auto, as Slurm array tasks 0 and 1 (--array=0-2)
  for (const task of [0, 1]) {
    const result = await withEnv({ SLURM_JOB_ID: `10${task}`, SLURM_ARRAY_TASK_ID: String(task), SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '2', SLURM_ARRAY_TASK_COUNT: '3' }, () =>
      runCli([...cli, '--shard', 'auto', '--parallel', '2']),
    );
    t.equal(result.code, 0, result.code === 0 ? `task ${task} done` : result.stderr);
    t.match(result.stderr, new RegExp(`Slurm array task ${task} -> shard ${task}/3`), 'says where the shard came from');
    t.equal((await manifest(join(out, `shard-${task}-of-3`))).inputs.shard, `${task}/3`);
  }

  let merged = await runCli(['merge', out, '--keep-top', '0.5', '--no-report']);
  t.equal(merged.code, 3, 'exit 3: merged, but a shard is missing');
  t.match(merged.stderr, /missing \(not started, or no run\.json yet\): 2 of 3/);
  t.match(merged.stdout, /merged 2 of 3 shards/);
  const partialIds = (await lines(out)).map((l) => l.id);
  const firstTwo = [...(await lines(join(out, 'shard-0-of-3'))), ...(await lines(join(out, 'shard-1-of-3')))].map((l) => l.id);
  t.same(partialIds.sort(), firstTwo.sort(), 'the merge holds exactly the complete shards');
  t.same((await manifest(out)).shards, { count: 3, joined: [0, 1], unfinished: [], missing: [2] });
  t.equal((await manifest(out)).status, 'interrupted', 'a partial merge is not marked complete');

  // shard 2 is preempted (SIGTERM, as Slurm sends) after its first image: its run.json says
  // interrupted, and the merge leaves it out
  const env2 = { SLURM_JOB_ID: '102', SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '2', SLURM_ARRAY_TASK_COUNT: '3' };
  const child = await withEnv(env2, async () => spawnCli([...cli, '--shard', 'auto', '--parallel', '1', '--in-flight', '1']));
  const journal2 = join(out, 'shard-2-of-3', 'triplets.jsonl');
  for (let waited = 0; waited < 120_000; waited += 20) {
    const text = await readFile(journal2, 'utf8').catch(() => '');
    if (text.includes('\n')) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  child.kill('SIGTERM');
  const stopped = await child.output;
  t.equal(stopped.code, 130, stopped.code === 130 ? 'SIGTERM: interrupted, outputs written' : stopped.stderr);
  t.equal((await manifest(join(out, 'shard-2-of-3'))).status, 'interrupted');
  const before = (await lines(join(out, 'shard-2-of-3'))).length;
  merged = await runCli(['merge', out, '--keep-top', '0.5', '--no-report']);
  t.equal(merged.code, 3);
  t.match(merged.stderr, /shard 2\/3 is interrupted: not joined/);
  t.same((await lines(out)).map((l) => l.id).sort(), firstTwo.sort(), 'an unfinished shard is not joined');

  // the scheduler restarts task 2 with the same command: it resumes from its journal
  const again = await withEnv({ ...env2, SLURM_RESTART_COUNT: '1' }, () =>
    runCli([...cli, '--shard', 'auto', '--parallel', '2']),
  );
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, new RegExp(`resuming: ${before} images already`));
  merged = await runCli(['merge', out, '--keep-top', '0.5', '--no-report', '--json']);
  t.equal(merged.code, 0, 'every shard complete: exit 0');
  const all = (await lines(out)).map((l) => l.id);
  t.same([...all].sort(), ids, 'every image exactly once');
  const final = await manifest(out);
  t.equal(final.status, 'complete');
  t.same(final.shards, { count: 3, joined: [0, 1, 2], unfinished: [], missing: [] });

  // safe to rerun: the same result, and the shard folders are untouched
  const journalBefore = await readFile(join(out, 'triplets.jsonl'), 'utf8');
  const shardJournal = await readFile(join(out, 'shard-1-of-3', 'triplets.jsonl'), 'utf8');
  merged = await runCli(['merge', out, '--keep-top', '0.5', '--no-report']);
  t.equal(merged.code, 0);
  t.equal(await readFile(join(out, 'triplets.jsonl'), 'utf8'), journalBefore, 'a rerun writes the same journal');
  t.equal(await readFile(join(out, 'shard-1-of-3', 'triplets.jsonl'), 'utf8'), shardJournal);
});

t.test('merge OUT refuses what is not one split, and a folder without complete shards', async (t) => {
  const { dir, base, out } = await world();
  t.match((await runCli(['merge', join(dir, 'nowhere')])).stderr, /FILE_NOT_FOUND/);
  await mkdir(out, { recursive: true });
  t.match((await runCli(['merge', out])).stderr, /no shard-I-of-N folders/);
  await refine({ ...base, shard: '0/2', limit: 1 }).complete();
  await mkdir(join(out, 'shard-0-of-3'));
  t.match((await runCli(['merge', out])).stderr, /split 2 and 3 ways/);
  await rm(join(out, 'shard-0-of-3'), { recursive: true });
  await mkdir(join(out, 'shard-1-of-2'));
  await writeFile(join(out, 'shard-1-of-2', 'run.json'), JSON.stringify({ ...(await manifest(join(out, 'shard-0-of-2'))), status: 'running' }));
  t.match((await runCli(['merge', out])).stderr, /holds the run of shard 0\/2, not 1\/2/, 'a shard folder holding another shard is refused');
  await rm(join(out, 'shard-0-of-2', 'run.json'));
  await writeFile(join(out, 'shard-1-of-2', 'run.json'), JSON.stringify({ ...JSON.parse(await readFile(join(out, 'shard-1-of-2', 'run.json'), 'utf8')), inputs: { shard: '1/2' } }));
  t.match((await runCli(['merge', out])).stderr, /none of the 2 shards .* is complete yet/);
  t.match((await runCli(['merge'])).stderr, /either OUT .* or --in/);
});

t.test('a requeued Slurm job, or a replacement pod of an Indexed Job, takes over the lock its earlier run left on another host', async (t) => {
  const { base, out } = await world();
  const folder = join(out, 'shard-0-of-2');
  await mkdir(folder, { recursive: true });
  const foreign = { pid: 1, host: 'node-that-died', startedAt: new Date().toISOString(), job: 'slurm:4242' };
  await writeFile(join(folder, LOCK_FILE), JSON.stringify(foreign));
  await t.rejects(withEnv({ SLURM_JOB_ID: '999' }, () => refine({ ...base, shard: '0/2', limit: 1 }).complete()), { code: 'OUTPUT_CONFLICT', message: /on node-that-died/ }, 'another job\'s lock is respected');
  const summary = await withEnv({ SLURM_JOB_ID: '4242' }, () => refine({ ...base, shard: '0/2', limit: 1 }).complete());
  t.equal(summary.status, 'complete', 'the same job id, restarted elsewhere, goes on');

  // a Kubernetes Indexed Job's replacement pod for the same index
  const k8s = { pid: 1, host: 'srf-refine-0-abcde', startedAt: new Date().toISOString(), job: 'kubernetes:uid-1/0' };
  await writeFile(join(folder, LOCK_FILE), JSON.stringify(k8s));
  await t.rejects(withEnv({ SRF_KUBERNETES_JOB_UID: 'uid-1', JOB_COMPLETION_INDEX: '1' }, () => refine({ ...base, shard: '0/2', limit: 2 }).complete()), { code: 'OUTPUT_CONFLICT' }, 'another index is another job');
  const pod = await withEnv({ SRF_KUBERNETES_JOB_UID: 'uid-1', JOB_COMPLETION_INDEX: '0' }, () => refine({ ...base, shard: '0/2', limit: 2 }).complete());
  t.equal(pod.status, 'complete', 'the same index of the same Job goes on');
});
