/**
 * How `run` shows its progress: JSON events on stdout (--json), a live bar on a terminal (images/s,
 * ETA, keep rate), or a plain line every few seconds when stderr is a file or a pipe (CI logs).
 */
import type { RefineProgress, RefineRun } from '../jobs/refine.js';
import type { CliContext } from './context.js';
import { formatDuration } from './options.js';

export type ProgressMode = 'json' | 'tty' | 'plain';

function counts(p: RefineProgress): string {
  const keep = p.keepRate === null ? '–' : `${(100 * p.keepRate).toFixed(1)}%`;
  return `${p.imagesPerSecond.toFixed(2)} img/s · ETA ${formatDuration(p.etaSeconds)} · kept≈${keep} · rejected ${p.rejected} · errors ${p.errors}`;
}

export function progressBar(p: RefineProgress, width = 24): string {
  const fraction = p.total ? Math.min(1, p.done / p.total) : 0;
  const filled = Math.round(fraction * width);
  const bar = p.total ? `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]` : '[counting…]';
  const of = p.total === null ? `${p.done}` : `${p.done}/${p.total} ${(100 * fraction).toFixed(0)}%`;
  return `${bar} ${of} · ${counts(p)}${p.phase === 'finalizing' ? ' · selecting and writing outputs…' : ''}`;
}

export function progressLine(p: RefineProgress): string {
  const of = p.total === null ? `${p.done} images` : `${p.done}/${p.total} images (${p.total ? ((100 * p.done) / p.total).toFixed(1) : '100'}%)`;
  return `progress: ${of} · ${counts(p)} · in flight ${p.inFlight}`;
}

export function attachProgress(run: RefineRun, ctx: CliContext, mode: ProgressMode, plainIntervalMs = 10_000): void {
  let lastPlain = 0;
  run.on('log', (entry: { level: string; message: string }) => {
    if (entry.level === 'warn') ctx.warn(entry.message);
    else ctx.log(entry.message);
  });
  if (mode === 'json') {
    run.on('result', (line) => {
      const event: Record<string, unknown> = { event: 'image', id: line.id, image: line.image, status: line.status };
      if (line.type !== undefined) event.type = line.type;
      if (line.score !== undefined) event.score = line.score;
      if (line.rejected !== undefined) event.rejected = line.rejected;
      if (line.error !== undefined) event.error = line.error;
      ctx.event(event);
    });
  }
  run.on('progress', (p: RefineProgress) => {
    if (mode === 'json') ctx.event({ event: 'progress', ...p });
    else if (mode === 'tty') {
      if (p.phase === 'done') return;
      ctx.live(progressBar(p));
    } else {
      const now = Date.now();
      if (p.phase === 'generating' && p.processed > 0 && now - lastPlain < plainIntervalMs) return;
      if (p.phase === 'done') return;
      lastPlain = now;
      ctx.log(progressLine(p));
    }
  });
}
