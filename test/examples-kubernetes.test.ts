/**
 * examples/kubernetes/ checked offline against the Kubernetes API schema, as no cluster is at hand:
 *  - kubernetes-models (generated from Kubernetes' OpenAPI spec) validates each object with its JSON
 *    schema: types, enums, required fields, formats;
 *  - its TypeScript interfaces catch what the schema lets through but an API server with strict field
 *    validation refuses: unknown or misspelt fields (excess-property checks of object literals);
 *  - and the files agree with each other (the shard count is the Job's completions, the claim exists,
 *    the merge reads where the shards write).
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1';
import { PersistentVolumeClaim } from 'kubernetes-models/v1';
import { ROOT } from './helpers/cli.js';

const DIR = join(ROOT, 'examples', 'kubernetes');

interface Kind {
  validate: (object: unknown) => void;
  /** Module and interface of its TypeScript type. */
  module: string;
  type: string;
}

const KINDS: Record<string, Kind> = {
  'batch/v1 Job': { validate: (o) => new Job(o as never).validate(), module: 'kubernetes-models/batch/v1', type: 'IJob' },
  'v1 PersistentVolumeClaim': { validate: (o) => new PersistentVolumeClaim(o as never).validate(), module: 'kubernetes-models/v1', type: 'IPersistentVolumeClaim' },
};

interface Manifest {
  file: string;
  object: Record<string, unknown>;
}

async function loadManifests(): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const name of (await readdir(DIR)).filter((n) => n.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(DIR, name), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors[0]?.message}`);
      manifests.push({ file: name, object: doc.toJS() as Record<string, unknown> });
    }
  }
  return manifests;
}

/** Schema errors per manifest ('' when valid). */
function schemaErrors(manifests: Manifest[]): string[] {
  return manifests.map(({ object }) => {
    const kind = KINDS[`${object.apiVersion} ${object.kind}`];
    if (!kind) return `no schema here for ${object.apiVersion} ${object.kind}`;
    try {
      kind.validate(object);
      return '';
    } catch (error) {
      return (error as Error).message;
    }
  });
}

/** TypeScript diagnostics of `const m: IKind = <object>` for every manifest (unknown fields, wrong types). */
function typeErrors(manifests: Manifest[]): string[] {
  const lines: string[] = [];
  manifests.forEach(({ object }, i) => {
    const kind = KINDS[`${object.apiVersion} ${object.kind}`];
    if (!kind) return;
    lines.push(`import type { ${kind.type} as T${i} } from '${kind.module}';`, `export const m${i}: T${i} = ${JSON.stringify(object, null, 1)};`);
  });
  const file = join(DIR, '__manifests_check__.ts');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const source = lines.join('\n');
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => (name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

const container = (job: Record<string, unknown>) => (job as { spec: { template: { spec: { containers: { command: string[]; resources: { limits: Record<string, unknown> } }[] } } } }).spec.template.spec.containers[0]!;

t.test('the Kubernetes examples are valid API objects: schema, field names, and each other', async (t) => {
  const manifests = await loadManifests();
  const kinds = manifests.map((m) => `${m.file}: ${m.object.kind}`);
  t.same(kinds, ['merge-job.yaml: Job', 'pvc.yaml: PersistentVolumeClaim', 'refine-job.yaml: Job']);
  t.same(schemaErrors(manifests), manifests.map(() => ''), 'every object passes its JSON schema');
  t.same(typeErrors(manifests), [], 'no unknown field and no wrong type anywhere');

  const byName = Object.fromEntries(manifests.map((m) => [(m.object.metadata as { name: string }).name, m.object]));
  const refine = byName['srf-refine'] as Record<string, unknown>;
  const merge = byName['srf-merge'] as Record<string, unknown>;
  const spec = refine.spec as { completionMode: string; completions: number; template: { spec: { volumes: { persistentVolumeClaim: { claimName: string } }[] } } };
  t.equal(spec.completionMode, 'Indexed');
  const command = container(refine).command;
  const shard = command[command.indexOf('--shard') + 1];
  t.equal(shard, `auto/${spec.completions}`, '--shard auto/N with N = spec.completions');
  t.ok(container(refine).resources.limits['nvidia.com/gpu'], 'a GPU per pod');
  t.equal((refine.spec as { podReplacementPolicy: string }).podReplacementPolicy, 'Failed', 'one pod per index at a time');
  const env = (container(refine) as unknown as { env: { name: string; valueFrom: { fieldRef: { fieldPath: string } } }[] }).env;
  t.same(env.find((e) => e.name === 'SRF_KUBERNETES_JOB_UID')?.valueFrom.fieldRef.fieldPath, "metadata.labels['batch.kubernetes.io/controller-uid']", 'the Job uid for the lock of a replacement pod');
  t.ok(byName[spec.template.spec.volumes[0]!.persistentVolumeClaim.claimName], 'the claim the pods mount is in pvc.yaml');
  const out = command[command.indexOf('--out') + 1];
  t.same(container(merge).command.slice(-2), ['merge', out], 'the merge joins where the shards write');
});

t.test('the checks catch a misspelt field, a bad enum and a missing required field', async (t) => {
  const [job] = (await loadManifests()).filter((m) => (m.object.metadata as { name: string }).name === 'srf-refine');
  const broken = (edit: (spec: Record<string, unknown>) => void): Manifest => {
    const object = structuredClone(job!.object);
    edit(object.spec as Record<string, unknown>);
    return { file: 'broken', object };
  };
  const typo = broken((spec) => {
    spec.completionz = spec.completions;
    delete spec.completions;
  });
  t.same(schemaErrors([typo]), [''], 'the JSON schema alone lets an unknown field through');
  t.match(typeErrors([typo]).join('\n'), /completionz/, 'the field-name check does not');
  t.match(schemaErrors([broken((spec) => (spec.completionMode = 'Indexd'))])[0], /completionMode must be equal to one of the allowed values/);
  t.match(schemaErrors([broken((spec) => delete (spec.template as { spec: { containers: { name?: string }[] } }).spec.containers[0]!.name)])[0], /containers\/0 must have required property name/);
});
