import t from 'tap';
import { isAutoShard, parseShardFolderName, resolveShard, shardFolderName, shardOutputFolder } from '../lib/jobs/shard-env.js';

const slurm = (id: number, min: number, max: number, step: number, count?: number) => ({
  SLURM_JOB_ID: '77',
  SLURM_ARRAY_TASK_ID: String(id),
  SLURM_ARRAY_TASK_MIN: String(min),
  SLURM_ARRAY_TASK_MAX: String(max),
  SLURM_ARRAY_TASK_STEP: String(step),
  ...(count === undefined ? {} : { SLURM_ARRAY_TASK_COUNT: String(count) }),
});

t.test('Slurm arrays: the shard index is (ID - MIN) / STEP, the count COUNT or derived from MIN/MAX/STEP', async (t) => {
  // --array=0-2: ids 0..2
  for (const id of [0, 1, 2]) {
    const r = resolveShard('auto', slurm(id, 0, 2, 1, 3));
    t.same(r.shard, { index: id, count: 3 });
    t.equal(r.source, 'slurm');
    t.match(r.found, /Slurm array task/);
  }
  // --array=1-7:3: ids 1, 4, 7 are shards 0, 1, 2 of 3 (the task id is not the index)
  t.same([1, 4, 7].map((id) => resolveShard('auto', slurm(id, 1, 7, 3, 3)).shard), [
    { index: 0, count: 3 },
    { index: 1, count: 3 },
    { index: 2, count: 3 },
  ]);
  // without COUNT it comes from MIN/MAX/STEP
  t.same(resolveShard('auto', slurm(7, 1, 7, 3)).shard, { index: 2, count: 3 });
  // no STEP/MIN set: a plain 0-based range
  t.same(resolveShard('auto', { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '5' }).shard, { index: 4, count: 5 });
  // auto/N agrees with the array, or is refused
  t.same(resolveShard('auto/3', slurm(4, 1, 7, 3, 3)).shard, { index: 1, count: 3 });
  t.throws(() => resolveShard('auto/4', slurm(4, 1, 7, 3, 3)), { code: 'INVALID_ARGUMENT', message: /has 3 tasks/ });
  // --array=0,3,5 (a list): COUNT 3, MIN 0, MAX 5, no step -> 5 is no shard index below 3
  t.throws(() => resolveShard('auto', { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '5', SLURM_ARRAY_TASK_COUNT: '3' }), {
    code: 'INVALID_ARGUMENT',
    message: /not a range/,
  });
  t.throws(() => resolveShard('auto', { SLURM_ARRAY_TASK_ID: '2' }), { code: 'INVALID_ARGUMENT', message: /without SLURM_ARRAY_TASK_COUNT/ });
  t.throws(() => resolveShard('auto', { SLURM_ARRAY_TASK_ID: 'x', SLURM_ARRAY_TASK_COUNT: '2' }), { code: 'INVALID_ARGUMENT', message: /SLURM_ARRAY_TASK_ID="x"/ });
});

t.test('Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX with the count given as auto/N', async (t) => {
  const r = resolveShard('auto/4', { JOB_COMPLETION_INDEX: '3' });
  t.same(r.shard, { index: 3, count: 4 });
  t.equal(r.source, 'kubernetes');
  t.match(r.found, /Kubernetes Indexed Job/);
  t.throws(() => resolveShard('auto', { JOB_COMPLETION_INDEX: '3' }), { code: 'INVALID_ARGUMENT', message: /--shard auto\/N with N = the Job's spec.completions/ });
  t.throws(() => resolveShard('auto/3', { JOB_COMPLETION_INDEX: '3' }), { code: 'INVALID_ARGUMENT', message: /not below 3/ });
});

t.test('an explicit I/N wins over the environment; auto without a scheduler says what it looked for', async (t) => {
  const both = { ...slurm(2, 0, 2, 1, 3), JOB_COMPLETION_INDEX: '1' };
  const r = resolveShard('1/5', both);
  t.same(r.shard, { index: 1, count: 5 });
  t.equal(r.source, 'explicit');
  t.same(resolveShard({ index: 0, count: 2 }, both).shard, { index: 0, count: 2 });
  t.throws(() => resolveShard('auto', both), { code: 'INVALID_ARGUMENT', message: /ambiguous/ });
  t.throws(() => resolveShard('auto', {}), { code: 'INVALID_ARGUMENT', message: /SLURM_ARRAY_TASK_ID .*JOB_COMPLETION_INDEX/ });
  t.throws(() => resolveShard('auto', { SLURM_JOB_ID: '9' }), { message: /not as an array/ });
  t.throws(() => resolveShard('auto/0', {}), { code: 'INVALID_ARGUMENT' });
  t.throws(() => resolveShard('3/3', {}), { code: 'INVALID_ARGUMENT' });
  t.ok(isAutoShard('auto') && isAutoShard('AUTO/8') && !isAutoShard('0/8'));
});

t.test('shard folders: OUT/shard-I-of-N, not nested twice', async (t) => {
  t.equal(shardFolderName({ index: 2, count: 8 }), 'shard-2-of-8');
  t.same(parseShardFolderName('shard-2-of-8'), { index: 2, count: 8 });
  t.equal(parseShardFolderName('shard-8-of-8'), null);
  t.equal(parseShardFolderName('shard-2'), null);
  t.equal(shardOutputFolder('/o', { index: 1, count: 2 }), '/o/shard-1-of-2');
  t.equal(shardOutputFolder('/o/shard-1-of-2', { index: 1, count: 2 }), '/o/shard-1-of-2');
});
