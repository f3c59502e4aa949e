/**
 * Type-checks examples/library/consumer.ts (the README's library code) inside a project that
 * installed the packed srf-native, with the settings people use: ESM with NodeNext and with Bundler
 * resolution, CommonJS (a .cts that require()s the package), each with skipLibCheck off, without and
 * then with @types/node. Returns one line per configuration with tsc's output when it failed.
 */
import { execFile } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './cli.js';

const exec = promisify(execFile);
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
export const CONSUMER = join(ROOT, 'examples', 'library', 'consumer.ts');

interface Config {
  name: string;
  file: 'consumer.mts' | 'consumer.cts';
  options: Record<string, unknown>;
}

const STRICT = { strict: true, skipLibCheck: false, noEmit: true };
const CONFIGS: Config[] = [
  { name: 'ESM, NodeNext, ES2022', file: 'consumer.mts', options: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022' } },
  { name: 'ESM, Bundler, ESNext', file: 'consumer.mts', options: { module: 'ESNext', moduleResolution: 'Bundler', target: 'ESNext' } },
  { name: 'CommonJS (.cts), NodeNext, ES2022', file: 'consumer.cts', options: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022' } },
];
const WITH_NODE_TYPES: Config[] = [
  ...CONFIGS,
  { name: 'ESM, NodeNext, lib ES2022 only (no DOM), types node', file: 'consumer.mts', options: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022'], types: ['node'] } },
];

export interface TypeCheck {
  name: string;
  ok: boolean;
  output: string;
}

async function tsc(project: string, config: Config): Promise<TypeCheck> {
  const tsconfig = `tsconfig.${config.name.replace(/[^a-z0-9]+/gi, '-')}.json`;
  await writeFile(join(project, tsconfig), JSON.stringify({ compilerOptions: { ...STRICT, ...config.options }, files: [config.file] }));
  try {
    await exec(process.execPath, [TSC, '-p', tsconfig], { cwd: project, maxBuffer: 16 * 2 ** 20 });
    return { name: config.name, ok: true, output: '' };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { name: config.name, ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}`.slice(0, 3000) };
  }
}

/** The versions of @types/node and TypeScript this clone develops with (package.json). */
async function devVersions(): Promise<{ typesNode: string }> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  return { typesNode: pkg.devDependencies['@types/node'] as string };
}

export async function checkConsumerTypes(project: string, npm: string, npmFlags: readonly string[]): Promise<{ without: TypeCheck[]; with: TypeCheck[] }> {
  await copyFile(CONSUMER, join(project, 'consumer.mts'));
  await copyFile(CONSUMER, join(project, 'consumer.cts'));
  const without: TypeCheck[] = [];
  for (const config of CONFIGS) without.push(await tsc(project, config));
  const { typesNode } = await devVersions();
  await exec(npm, ['install', `@types/node@${typesNode}`, ...npmFlags, '--ignore-scripts'], { cwd: project });
  const withTypes: TypeCheck[] = [];
  for (const config of WITH_NODE_TYPES) withTypes.push(await tsc(project, config));
  return { without, with: withTypes };
}
