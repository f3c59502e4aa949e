// The package as users get it: `npm pack`, then `npm install ./srf-native-*.tgz` in a fresh project
// (npm's hoisted layout: node-llama-cpp lands beside srf-native, not inside it). The install script
// builds the engine there (ccache makes that about a minute when this clone's build filled it);
// then `srf-native info`, the demo, and an ESM import and a CommonJS require from the project.
// A second project installed with --ignore-scripts must fail with the one command that builds it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { tempDir } from './helpers/fixtures.js';
import { ROOT } from './helpers/cli.js';
import { CONSUMER, checkConsumerTypes } from './helpers/consumer-types.js';

const exec = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const QUIET = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await exec(cmd, args, { cwd, env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(error) };
  }
}

async function freshProject(dir: string, name: string): Promise<string> {
  const project = join(dir, name);
  await exec('mkdir', ['-p', project]);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return project;
}

t.test('npm pack holds only what the package needs', async (t) => {
  const { stdout } = await exec(NPM, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 16 * 2 ** 20 });
  const files: string[] = JSON.parse(stdout)[0].files.map((f: { path: string }) => f.path);
  for (const needed of ['package.json', 'CMakeLists.txt', 'scripts/build-native.mjs', 'scripts/llama-source.mjs', 'bin/srf-native.js', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'native/engine.cpp', 'docs/METHOD.md']) {
    t.ok(files.includes(needed), `ships ${needed}`);
  }
  const unwanted = files.filter((f) => /^(test|bench|dist\/bench|dist\/test|lib|deps|build|\.ci|\.github)\//.test(f) || f.endsWith('.map'));
  t.same(unwanted, [], 'no tests, bench files, TS sources, build outputs or source maps');
});

t.test('a fresh project installs the packed tarball and uses it', async (t) => {
  const dir = await tempDir();
  const packed = await run(NPM, ['pack', '--pack-destination', dir, '--loglevel=error'], ROOT);
  t.equal(packed.code, 0, 'npm pack', { output: packed.stderr });
  const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
  if (!tarball) return t.fail('no tarball');

  const project = await freshProject(dir, 'consumer');
  const installed = await run(NPM, ['install', join(dir, tarball), ...QUIET, '--foreground-scripts'], project);
  t.equal(installed.code, 0, 'npm install', { output: installed.stderr.slice(-2000) });
  t.match(installed.stdout + installed.stderr, /srf-native: building the engine .*\n\s+backend: .*\n\s+CUDA architectures: .*\n\s+jobs: \d+/, 'says what it builds');
  const pkg = join(project, 'node_modules', 'srf-native');
  t.ok(existsSync(join(project, 'node_modules', 'node-llama-cpp')), 'node-llama-cpp is hoisted beside srf-native');
  t.notOk(existsSync(join(pkg, 'node_modules', 'node-llama-cpp')), 'not nested: the layout that used to fail');
  t.ok(existsSync(join(pkg, 'build', 'Release', 'srf_native.node')), 'the engine is built');
  t.notOk(existsSync(join(pkg, 'deps')), "the llama.cpp checkout is pruned from an installed package");

  const info = await run(NPM, ['exec', '--', 'srf-native', 'info', '--json'], project);
  t.equal(info.code, 0, 'srf-native info', { output: info.stderr });
  t.match(JSON.parse(info.stdout.trim().split('\n').pop() ?? '{}'), { backend: /^(cpu|cuda)$/, llamaCppVersion: /^v\d/ });

  const demo = await run(NPM, ['exec', '--', 'srf-native', 'run', '--demo', '--out', 'demo'], project);
  t.equal(demo.code, 0, 'srf-native run --demo', { output: demo.stderr.slice(-2000) });
  const lines = (await readFile(join(project, 'demo', 'triplets.jsonl'), 'utf8')).trim().split('\n');
  t.ok(lines.length > 0, 'the demo wrote triplets');
  t.ok(existsSync(join(project, 'demo', 'report.html')), 'and its report');

  await writeFile(join(project, 'esm.mjs'), "import { VisionModel, refine, buildInfo } from 'srf-native';\nconsole.log(typeof VisionModel, typeof refine, buildInfo().backend);\n");
  const esm = await run(process.execPath, ['esm.mjs'], project);
  t.match(esm.stdout, /^function function (cpu|cuda)$/m, 'ESM import', { output: esm.stderr });
  await writeFile(join(project, 'cjs.cjs'), "const { VisionModel, refine } = require('srf-native');\nconsole.log(typeof VisionModel, typeof refine);\n");
  const cjs = await run(process.execPath, ['cjs.cjs'], project);
  t.match(cjs.stdout, /^function function$/m, 'require from CommonJS (Node >= 20.19 loads ESM)', { output: cjs.stderr });

  // Without its install script: the first use names the command that builds the engine.
  const bare = await freshProject(dir, 'no-scripts');
  const bareInstall = await run(NPM, ['install', join(dir, tarball), ...QUIET, '--ignore-scripts'], bare);
  t.equal(bareInstall.code, 0, 'npm install --ignore-scripts', { output: bareInstall.stderr });
  const missing = await run(NPM, ['exec', '--', 'srf-native', 'info'], bare);
  t.equal(missing.code, 2, 'exit 2');
  t.match(missing.stderr, /srf-native: NATIVE_MISSING: .*`npx srf-native build`/);
  const imported = await run(
    process.execPath,
    ['--input-type=module', '-e', "import('srf-native').then((m) => m.buildInfo()).catch((e) => console.log(e.code, e.message))"],
    bare,
  );
  t.match(imported.stdout, /^NATIVE_MISSING .*npx srf-native build/m, 'the library says the same');

  // The published types compile in that project as a TypeScript user's code (no engine needed):
  // the README's library example, ESM and CommonJS, without and with @types/node.
  const types = await checkConsumerTypes(bare, NPM, QUIET);
  for (const check of [...types.without.map((c) => ({ ...c, name: `${c.name}, no @types/node` })), ...types.with.map((c) => ({ ...c, name: `${c.name}, @types/node` }))]) {
    t.ok(check.ok, `tsc --noEmit: ${check.name}`, { output: check.output });
  }

  // ... and that command builds it in place and reports what it built.
  const built = await run(NPM, ['exec', '--', 'srf-native', 'build', '--gpu', 'cpu'], bare);
  t.equal(built.code, 0, 'srf-native build', { output: built.stderr.slice(-2000) });
  t.match(built.stderr, /backend: CPU/);
  t.match(built.stdout, /srf-native: engine built: backend cpu, llama\.cpp v\d/);
  const after = await run(NPM, ['exec', '--', 'srf-native', 'info'], bare);
  t.equal(after.code, 0, 'info works after the build');
});

t.test("the README's library section is the code the consumer-types check compiles", async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Using it as a library'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  const example = (await readFile(CONSUMER, 'utf8')).replace(/^(\/\/.*\n)+/, '');
  t.equal(block, example, 'README block == examples/library/consumer.ts without its header comment');
});
