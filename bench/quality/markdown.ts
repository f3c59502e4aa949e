/** bench/QUALITY.md is written in sections, each between markers, so each experiment rewrites only its own. */
import { readFile, writeFile } from 'node:fs/promises';

const HEADER = `# Quality on the world: does Triangular Consistency keep better data, and does the model improve?

Measured with the world model (training/world: a tiny LLaVA-1.5 and BERT embedder trained from scratch
on the synthetic world of lib/world) on held-out world images, every generated triplet graded by the
world's oracle. Written by \`npm run bench:quality\` (bench/quality/README.md says how to rerun it).
`;

export async function writeSection(file: string, name: string, body: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = HEADER;
  }
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  text = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  await writeFile(file, text);
}

export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>, align?: readonly ('l' | 'r')[]): string {
  const sep = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}
