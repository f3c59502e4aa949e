#!/usr/bin/env bash
# The Slurm path for real: a single-node Slurm cluster on localhost runs examples/slurm/refine.sbatch
# as a 3-task array over the tiny generated models, one task is requeued mid-run (scontrol requeue:
# SIGTERM, then the same command again, which resumes from the shard's journal), the dependent merge
# job joins the shards, and every image must be in the merged output exactly once.
#
#   bash test/slurm/run.sh            (.ci/run runs it when SRF_TEST_SLURM=1)
#
# Needs: root, the project built (npm ci), and Debian's slurmctld, slurmd, slurm-client and munge;
# when they are missing it installs them (apt-get install --no-install-recommends, ~10 s) and nothing
# else. Everything it starts (munged, slurmctld, slurmd) runs with its own config, socket, ports and
# state under a temporary folder, and is stopped in a trap, jobs first. SRF_SLURM_KEEP=1 keeps that
# folder for a look afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
started=$(date +%s)
say() { echo "slurm-test: $*"; }
fail() { echo "slurm-test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (slurmd runs jobs as root here)"
[ -f "$ROOT/dist/lib/cli/main.js" ] || fail "the project is not built: run npm ci (or npx tsc -p .) first"
missing=()
for tool in slurmctld slurmd sbatch munged; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

work=$(mktemp -d /tmp/srf-slurm.XXXXXX)
chmod 755 "$work"
export SLURM_CONF="$work/slurm.conf"
host=$(hostname -s)

# --- stop everything we started, whatever happens ---
stop_pidfile() { # name pidfile
  [ -f "$2" ] || return 0
  local pid
  pid=$(cat "$2" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && return 0; sleep 0.1; done
  say "$1 (pid $pid) did not stop in 10 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  set +e
  if [ -f "$work/slurmctld.pid" ]; then
    scancel --full --quiet --user=root 2>/dev/null
    for _ in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  stop_pidfile slurmd "$work/slurmd.pid"
  stop_pidfile slurmctld "$work/slurmctld.pid"
  stop_pidfile munged "$work/munged.pid"
  if [ "$status" != 0 ]; then
    for log in "$work"/slurmctld.log "$work"/slurmd.log "$work"/out/*.log; do
      [ -f "$log" ] && { echo "----- $log (last 25 lines)"; tail -25 "$log"; }
    done
  fi
  if [ "${SRF_SLURM_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
  say "$([ "$status" = 0 ] && echo passed || echo failed) in $(( $(date +%s) - started )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # seconds description command...
  local limit=$1 what=$2
  shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit} s waiting for $what"
    sleep 0.2
  done
}

# --- munge: the package makes the key, starts nothing ---
[ -f /etc/munge/munge.key ] || fail "/etc/munge/munge.key is missing (reinstall munge)"
mkdir -p /run/munge
munged --socket="$work/munge.sock" --pid-file="$work/munged.pid" --log-file="$work/munged.log" --seed-file="$work/munged.seed" --force
wait_for 10 munged test -S "$work/munge.sock"

# --- a one-node cluster: no systemd, no cgroups; fast scheduling and requeue for a test ---
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat >"$SLURM_CONF" <<EOF
ClusterName=srftest
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${work}/munge.sock,cred_expire=10
StateSaveLocation=${work}/ctld
SlurmdSpoolDir=${work}/d
SlurmctldPidFile=${work}/slurmctld.pid
SlurmdPidFile=${work}/slurmd.pid
SlurmctldLogFile=${work}/slurmctld.log
SlurmdLogFile=${work}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerParameters=sched_interval=2
DependencyParameters=kill_invalid_depend
MinJobAge=600
KillWait=30
GresTypes=gpu
NodeName=${host} NodeAddr=127.0.0.1 CPUs=2 Sockets=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=${mem_mb} Gres=gpu:3 State=UNKNOWN
PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
# Three stand-in GPUs (character devices like /dev/null: slurmd drops GPUs without a device file), so
# the example's --gres=gpu:1 is scheduled as written; the CPU build never opens them.
for i in 0 1 2; do mknod "$work/fakegpu$i" c 1 3; done
echo "NodeName=${host} Name=gpu File=${work}/fakegpu[0-2]" >"$work/gres.conf"
mkdir -p "$work/ctld" "$work/d"
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"
wait_for 30 "the node to be idle" bash -c 'sinfo -h -o %t 2>/dev/null | grep -qx idle'
say "cluster up in $(( $(date +%s) - started )) s ($(sinfo --version))"

# --- the world: tiny generated models and 90 images on "shared storage" ---
mkdir -p "$work/out" "$work/data"
node --input-type=module -e "
  const { writeFixtures } = await import('$ROOT/dist/fixtures/gguf/fixtures.js');
  const sharp = (await import('sharp')).default;
  const { mkdir } = await import('node:fs/promises');
  const { writeFile } = await import('node:fs/promises');
  const models = await writeFixtures('$work/data/models', { llava: 'tiny', seed: 5 });
  await writeFile('$work/data/models.env', 'MODEL=' + models.model + '\\nMMPROJ=' + models.mmproj + '\\n');
  await mkdir('$work/data/images/a', { recursive: true });
  for (let i = 0; i < 90; i++) {
    const color = { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 };
    await sharp({ create: { width: 24 + (i % 9), height: 20 + (i % 5), channels: 3, background: color } }).png().toFile('$work/data/images/' + (i % 2 ? 'a/' : '') + 'img' + i + '.png');
  }
"
images=90

# --- submit the example as written, but with 3 tasks and this node's sizes ---
# shellcheck disable=SC1091
. "$work/data/models.env"
export MODEL MMPROJ
export IMAGES="$work/data/images" OUT="$work/out/run" SHARDS=3
export SRF_NATIVE="node $ROOT/bin/srf-native.js"
export RUN_ARGS="--parallel 1 --in-flight 1 --threads 1 --max-tokens-qa 64 --max-tokens-check 32"
export SBATCH_ARGS="--cpus-per-task=1 --mem=600M --output=$work/out/refine-%A_%a.log"
export MERGE_SBATCH_ARGS="--cpus-per-task=1 --mem=600M --output=$work/out/merge-%j.log"
submitted=$(cd "$work/out" && bash "$ROOT/examples/slurm/refine.sbatch")
say "$submitted"
array=$(sed -nE 's/submitted array job ([0-9]+) .*/\1/p' <<<"$submitted")
merge=$(sed -nE 's/.* merge job ([0-9]+) .*/\1/p' <<<"$submitted")
[ -n "$array" ] && [ -n "$merge" ] || fail "could not read the job ids from: $submitted"

# --- requeue task 1 once it has journaled a few images ---
journal1="$OUT/shard-1-of-3/triplets.jsonl"
lines_of() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
wait_for 120 "task 1 to journal 2 images" bash -c "[ \$( ([ -f '$journal1' ] && wc -l <'$journal1') || echo 0) -ge 2 ]"
state=$(squeue -h -j "${array}_1" -o %T)
[ "$state" = RUNNING ] || fail "task 1 is $state, not RUNNING, when it should be requeued (it finished too fast?)"
before=$(lines_of "$journal1")
scontrol requeue "${array}_1"
say "requeued task ${array}_1 with $before of its images journaled"

# --- wait for the array and the merge ---
wait_for 600 "the array and merge jobs to end" bash -c "[ -z \"\$(squeue -h -j $array,$merge 2>/dev/null)\" ]"
merge_state=$(scontrol show job "$merge" | sed -nE 's/.*JobState=([A-Z_]+).*/\1/p')
merge_exit=$(scontrol show job "$merge" | sed -nE 's/.* ExitCode=([0-9:]+).*/\1/p')
say "merge job $merge: $merge_state, exit $merge_exit"
[ "$merge_state" = COMPLETED ] && [ "$merge_exit" = 0:0 ] || fail "the merge job did not complete cleanly"

# --- the checks ---
log1=$(ls "$work"/out/refine-"${array}"_1.log)
grep -q "restart 1" "$log1" || fail "task 1 did not run a second time (no 'restart 1' in $log1)"
grep -q "resuming: [1-9][0-9]* images already" "$log1" || fail "task 1's second run did not resume from its journal"
grep -q "Slurm array task 1 -> shard 1/3" "$log1" || fail "task 1 did not say where its shard came from"
node --input-type=module -e "
  const { readFile, readdir } = await import('node:fs/promises');
  const path = await import('node:path');
  const lines = (await readFile('$OUT/triplets.jsonl', 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const walk = async (dir) => (await Promise.all((await readdir(dir, { withFileTypes: true })).map((e) => e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]))).flat();
  const expected = (await walk('$IMAGES')).map((f) => path.relative('$IMAGES', f)).sort();
  const seen = new Map();
  for (const line of lines) seen.set(line.image, (seen.get(line.image) ?? 0) + 1);
  const twice = [...seen].filter(([, n]) => n > 1).map(([i]) => i);
  const absent = expected.filter((i) => !seen.has(i));
  const extra = [...seen.keys()].filter((i) => !expected.includes(i));
  const run = JSON.parse(await readFile('$OUT/run.json', 'utf8'));
  const problems = [];
  if (twice.length) problems.push('more than once: ' + twice.join(' '));
  if (absent.length) problems.push('missing: ' + absent.join(' '));
  if (extra.length) problems.push('not an input: ' + extra.join(' '));
  if (lines.length !== expected.length) problems.push(lines.length + ' lines for ' + expected.length + ' images');
  if (run.status !== 'complete' || JSON.stringify(run.shards?.joined) !== '[0,1,2]') problems.push('run.json: ' + run.status + ' ' + JSON.stringify(run.shards));
  if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
  console.log('slurm-test: ' + expected.length + ' images, each exactly once in the merged triplets.jsonl; shards ' + run.shards.joined.join(',') + ' of ' + run.shards.count);
" || fail "the merged output is wrong"
[ "$images" = "$(wc -l <"$OUT/triplets.jsonl")" ] || fail "line count"
