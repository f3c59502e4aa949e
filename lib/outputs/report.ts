/**
 * `OUT/report.html`: one self-contained page (no scripts, no outside links) with score histograms per
 * type (inline SVG), keep rates, kept and not-kept examples with small thumbnails (JPEG data URLs made
 * with sharp), rejected replies and an error summary. Everything a model wrote, and every file name,
 * is untrusted text and goes through escapeHtml.
 */
import path from 'node:path';
import sharp from 'sharp';
import { DATA_TYPES, type DataType } from '../srf/data-types.js';
import { writeFileAtomic } from '../util/files.js';
import { JOURNAL_FILE, isScoredLine, readJournal, type TripletLine } from './journal.js';
import { readManifest, type RunManifest } from './manifest.js';

export const REPORT_FILE = 'report.html';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for HTML content and attribute values; control characters become U+FFFD. */
export function escapeHtml(text: unknown): string {
  return String(text ?? '')
    .replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\ufffd');
}

export interface ReportOptions {
  /** Examples shown per type, kept and not kept each. Default 3. */
  examplesPerType?: number;
  /** Rejected replies shown. Default 6. */
  maxRejected?: number;
  /** Error lines listed. Default 20. */
  maxErrors?: number;
  /** Thumbnail edge in pixels. Default 96. */
  thumbnailSize?: number;
}

const BINS = 20;

interface TypeStats {
  kept: number[];
  notKept: number[];
  total: number;
  keptCount: number;
  best: TripletLine[];
  worst: TripletLine[];
}

interface ReportData {
  manifest: RunManifest | null;
  byType: Record<DataType, TypeStats>;
  rejected: TripletLine[];
  rejectedByReason: Map<string, number>;
  errors: TripletLine[];
  errorsByCode: Map<string, number>;
  lines: number;
  scored: number;
  keptTotal: number;
  selectionPending: boolean;
}

function keepBest(list: TripletLine[], line: TripletLine, max: number, better: (a: TripletLine, b: TripletLine) => number): void {
  list.push(line);
  list.sort(better);
  if (list.length > max) list.length = max;
}

async function collect(out: string, options: Required<ReportOptions>): Promise<ReportData> {
  const byType = Object.fromEntries(
    DATA_TYPES.map((t) => [t, { kept: new Array(BINS).fill(0), notKept: new Array(BINS).fill(0), total: 0, keptCount: 0, best: [], worst: [] }]),
  ) as unknown as Record<DataType, TypeStats>;
  const data: ReportData = {
    manifest: await readManifest(out),
    byType,
    rejected: [],
    rejectedByReason: new Map(),
    errors: [],
    errorsByCode: new Map(),
    lines: 0,
    scored: 0,
    keptTotal: 0,
    selectionPending: false,
  };
  const byScoreDesc = (a: TripletLine, b: TripletLine) => (b.score ?? 0) - (a.score ?? 0) || (a.id < b.id ? -1 : 1);
  const byScoreAsc = (a: TripletLine, b: TripletLine) => (a.score ?? 0) - (b.score ?? 0) || (a.id < b.id ? -1 : 1);
  for await (const line of readJournal(path.join(out, JOURNAL_FILE))) {
    data.lines++;
    if (isScoredLine(line)) {
      data.scored++;
      const stats = byType[line.type];
      if (!stats) continue;
      stats.total++;
      const bin = Math.min(BINS - 1, Math.max(0, Math.floor(line.score * BINS)));
      if (line.kept === undefined) data.selectionPending = true;
      if (line.kept) {
        stats.kept[bin]++;
        stats.keptCount++;
        data.keptTotal++;
        keepBest(stats.best, line, options.examplesPerType, byScoreDesc);
      } else {
        stats.notKept[bin]++;
        keepBest(stats.worst, line, options.examplesPerType, byScoreAsc);
      }
    } else if (line.status === 'rejected') {
      const reason = line.rejected ?? 'unknown';
      data.rejectedByReason.set(reason, (data.rejectedByReason.get(reason) ?? 0) + 1);
      if (data.rejected.length < options.maxRejected) data.rejected.push(line);
    } else {
      const code = line.error?.code ?? 'UNKNOWN';
      data.errorsByCode.set(code, (data.errorsByCode.get(code) ?? 0) + 1);
      if (data.errors.length < options.maxErrors) data.errors.push(line);
    }
  }
  return data;
}

async function thumbnail(imageRoot: string | undefined, image: string, size: number): Promise<string | null> {
  if (!imageRoot) return null;
  try {
    const buffer = await sharp(path.resolve(imageRoot, image), { pages: 1, limitInputPixels: 268_402_689 })
      .rotate()
      .resize(size, size, { fit: 'inside' })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 70 })
      .toBuffer();
    return `data:image/jpeg;base64,${buffer.toString('base64')}`;
  } catch {
    return null;
  }
}

function histogram(stats: TypeStats): string {
  const width = 300;
  const height = 90;
  const barWidth = width / BINS;
  const max = Math.max(1, ...stats.kept.map((k, i) => k + (stats.notKept[i] as number)));
  const bars: string[] = [];
  for (let i = 0; i < BINS; i++) {
    const notKept = ((stats.notKept[i] as number) / max) * height;
    const kept = ((stats.kept[i] as number) / max) * height;
    const x = (i * barWidth).toFixed(1);
    const w = (barWidth - 1).toFixed(1);
    if (notKept > 0) bars.push(`<rect x="${x}" y="${(height - notKept).toFixed(1)}" width="${w}" height="${notKept.toFixed(1)}" class="nk"><title>${(i / BINS).toFixed(2)}-${((i + 1) / BINS).toFixed(2)}: ${stats.notKept[i]} not kept</title></rect>`);
    if (kept > 0) bars.push(`<rect x="${x}" y="${(height - notKept - kept).toFixed(1)}" width="${w}" height="${kept.toFixed(1)}" class="k"><title>${(i / BINS).toFixed(2)}-${((i + 1) / BINS).toFixed(2)}: ${stats.kept[i]} kept</title></rect>`);
  }
  return `<svg viewBox="0 0 ${width} ${height + 14}" width="${width}" height="${height + 14}" role="img" aria-label="score histogram">
<line x1="0" y1="${height}" x2="${width}" y2="${height}" class="axis"/>${bars.join('')}
<text x="0" y="${height + 12}">0</text><text x="${width / 2 - 8}" y="${height + 12}">0.5</text><text x="${width - 8}" y="${height + 12}">1</text></svg>`;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '–';
}

function number(value: number | undefined): string {
  return typeof value === 'number' ? value.toFixed(3) : '–';
}

async function exampleCard(line: TripletLine, imageRoot: string | undefined, size: number, label: string): Promise<string> {
  const thumb = await thumbnail(imageRoot, line.image, size);
  const img = thumb ? `<img src="${thumb}" alt="" width="${size}">` : '<div class="noimg">no preview</div>';
  return `<div class="card ${escapeHtml(label)}">${img}<div class="text">
<div class="meta">${escapeHtml(line.image)} · S ${number(line.score)} (Q ${number(line.simQ)}, A ${number(line.simA)})</div>
<div><b>Q</b> ${escapeHtml(line.question)}</div><div><b>A</b> ${escapeHtml(line.answer)}</div>
<div class="prime"><b>Q′</b> ${escapeHtml(line.questionPrime)}</div><div class="prime"><b>A′</b> ${escapeHtml(line.answerPrime)}</div>
</div></div>`;
}

function renderStyle(): string {
  return `<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}td:first-child,th:first-child{text-align:left}
.warn{background:#fde8e8;border:2px solid #c0392b;padding:10px;font-weight:600}
.note{background:#fff8e1;border:1px solid #e0b000;padding:8px}
.types{display:flex;flex-wrap:wrap;gap:16px}.type{border:1px solid #ddd;padding:8px}
svg .k{fill:#2e7d32}svg .nk{fill:#bbb}svg .axis{stroke:#888}svg text{font-size:10px;fill:#555}
.card{display:flex;gap:10px;border:1px solid #ddd;padding:8px;margin:6px 0;overflow-wrap:anywhere}
.card.kept{border-left:4px solid #2e7d32}.card.notkept{border-left:4px solid #999}
.card img{flex:none;align-self:flex-start}.noimg{width:96px;height:60px;background:#eee;color:#888;font-size:11px;flex:none}
.text div{white-space:pre-wrap}.meta{color:#666;font-size:12px}.prime{color:#555}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:6px}
</style>`;
}

/** Builds report.html for an output folder from its run.json and triplets.jsonl. Returns the file path. */
export async function writeReport(out: string, reportOptions: ReportOptions = {}): Promise<string> {
  const options: Required<ReportOptions> = {
    examplesPerType: reportOptions.examplesPerType ?? 3,
    maxRejected: reportOptions.maxRejected ?? 6,
    maxErrors: reportOptions.maxErrors ?? 20,
    thumbnailSize: reportOptions.thumbnailSize ?? 96,
  };
  const data = await collect(out, options);
  const manifest = data.manifest;
  const imageRoot = manifest?.imageRoot;
  const size = options.thumbnailSize;
  const parts: string[] = [];
  parts.push(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>srf-native report</title>${renderStyle()}</head><body>`);
  parts.push(`<h1>Self-refinement run: ${escapeHtml(path.basename(path.resolve(out)))}</h1>`);
  const scoring = manifest?.scoring;
  if (scoring && !scoring.paperFaithful) parts.push(`<p class="warn">⚠ ${escapeHtml(scoring.warning ?? "Scores are not the paper's.")}</p>`);
  for (const warning of manifest?.outputs?.warnings ?? []) parts.push(`<p class="warn">⚠ ${escapeHtml(warning)}</p>`);
  if (data.selectionPending) parts.push('<p class="note">Selection has not run over every line yet (an interrupted run): lines without a decision count as not kept.</p>');
  const selection = manifest?.selection;
  parts.push(`<table>
<tr><th>status</th><td>${escapeHtml(manifest?.status ?? 'unknown')}</td></tr>
<tr><th>round</th><td>${escapeHtml(manifest?.round ?? '–')}</td></tr>
<tr><th>images (journal lines)</th><td>${data.lines}</td></tr>
<tr><th>scored triplets</th><td>${data.scored}</td></tr>
<tr><th>rejected replies</th><td>${[...data.rejectedByReason.values()].reduce((a, b) => a + b, 0)}</td></tr>
<tr><th>errors</th><td>${[...data.errorsByCode.values()].reduce((a, b) => a + b, 0)}</td></tr>
<tr><th>kept</th><td>${data.keptTotal} (${percent(data.keptTotal, data.lines)} of images)</td></tr>
<tr><th>selection</th><td>${escapeHtml(selection?.policy ?? '–')}</td></tr>
<tr><th>similarity</th><td>${escapeHtml(scoring ? `${scoring.similarity}${scoring.paperFaithful ? ' (paper-faithful)' : ' (NOT paper-faithful)'}` : '–')}</td></tr>
<tr><th>image root</th><td>${escapeHtml(imageRoot ?? '–')}</td></tr>
</table>`);

  parts.push('<h2>Keep rate per type</h2><table><tr><th>type</th><th>scored</th><th>kept</th><th>keep rate</th><th>lowest kept score</th></tr>');
  for (const type of DATA_TYPES) {
    const stats = data.byType[type];
    if (stats.total === 0) continue;
    parts.push(`<tr><td>${type}</td><td>${stats.total}</td><td>${stats.keptCount}</td><td>${percent(stats.keptCount, stats.total)}</td><td>${number(selection?.byType?.[type]?.threshold ?? undefined)}</td></tr>`);
  }
  parts.push('</table>');

  parts.push('<h2>Scores per type</h2><p>S = √(sim(Q, Q′) · sim(A, A′)); green: kept, grey: not kept.</p><div class="types">');
  for (const type of DATA_TYPES) {
    const stats = data.byType[type];
    if (stats.total === 0) continue;
    parts.push(`<div class="type"><b>${type}</b> (${stats.total})<br>${histogram(stats)}</div>`);
  }
  parts.push('</div>');

  parts.push('<h2>Kept examples (highest scores per type)</h2>');
  for (const type of DATA_TYPES) {
    for (const line of data.byType[type].best) parts.push(await exampleCard(line, imageRoot, size, 'kept'));
  }
  parts.push('<h2>Not kept (lowest scores per type)</h2>');
  for (const type of DATA_TYPES) {
    for (const line of data.byType[type].worst) parts.push(await exampleCard(line, imageRoot, size, 'notkept'));
  }

  parts.push('<h2>Rejected I→QA replies</h2>');
  if (data.rejectedByReason.size === 0) parts.push('<p>None.</p>');
  else {
    parts.push(`<p>${[...data.rejectedByReason].map(([r, n]) => `${escapeHtml(r)}: ${n}`).join(', ')}</p>`);
    for (const line of data.rejected) {
      const thumb = await thumbnail(imageRoot, line.image, size);
      const img = thumb ? `<img src="${thumb}" alt="" width="${size}">` : '<div class="noimg">no preview</div>';
      parts.push(`<div class="card">${img}<div class="text"><div class="meta">${escapeHtml(line.image)} · ${escapeHtml(line.rejected)}</div><pre>${escapeHtml(line.raw ?? '')}</pre></div></div>`);
    }
  }

  parts.push('<h2>Errors</h2>');
  if (data.errorsByCode.size === 0) parts.push('<p>None.</p>');
  else {
    parts.push(`<p>${[...data.errorsByCode].map(([c, n]) => `${escapeHtml(c)}: ${n}`).join(', ')}</p><table><tr><th>image</th><th>code</th><th>message</th></tr>`);
    for (const line of data.errors) {
      parts.push(`<tr><td>${escapeHtml(line.image)}</td><td>${escapeHtml(line.error?.code)}</td><td style="text-align:left">${escapeHtml(line.error?.message)}</td></tr>`);
    }
    parts.push('</table>');
  }
  parts.push(`<p class="meta">Written by srf-native ${escapeHtml(manifest?.tool?.version ?? '')} on ${escapeHtml(new Date().toISOString())}.</p></body></html>\n`);
  const file = path.join(out, REPORT_FILE);
  await writeFileAtomic(file, parts.join('\n'));
  return file;
}
