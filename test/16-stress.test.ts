// The engine under stress: each case runs in a child process (test/helpers/stress-child.ts), so
// that an abort of the process is a failed assertion here. A case holds when its process exits 0
// by itself: no signal, no crash, every promise settled as the case expects.
import t from 'tap';
import { makeWorld } from './helpers/fixtures.js';
import { runStressCase } from './helpers/stress.js';

const world = await makeWorld(4);

const CASES = [
  'parallel-above-batch',
  'stats-during-close',
  'exit-without-close',
  'natural-exit-without-close',
  'workers-terminated',
  'random-aborts',
  'bad-numbers',
  'overcommit',
];

// SRF_STRESS_ONLY=a,b runs only those cases (while working on one).
const only = process.env.SRF_STRESS_ONLY ? process.env.SRF_STRESS_ONLY.split(',') : undefined;
for (const name of CASES.filter((c) => !only || only.includes(c))) {
  t.test(name, async (t) => {
    const r = await runStressCase(name, world);
    t.equal(r.signal, null, `${name}: not killed by a signal`);
    t.equal(r.code, 0, `${name}: exit 0\n${r.stderr.slice(-3000)}`);
    t.comment(`${name}: ${r.ms} ms ${r.stdout.trim().split('\n').slice(-1)[0] ?? ''}`);
  });
}
