/**
 * Progress display for `faceg2e-native run` (and any caller of `generate`).
 *
 * - On a TTY: one redrawn line per phase, e.g.
 *     geometry  ████████████░░░░░░░░  120/200  60%  14.2 it/s  ETA 0:05  loss 0.1234  t 0.512
 *   finished with a newline when the phase ends, and a summary line at the end.
 * - Otherwise: JSON lines, one object per event, e.g.
 *     {"event":"progress","phase":"geometry","iteration":10,"total":200,"elapsed":1.52,"itPerSecond":6.6,"eta":28.8,"metrics":{"loss":0.12}}
 *
 *   const progress = createProgressReporter({ mode: 'auto' });
 *   await generate(cfg, { onProgress: (e) => progress.update(e) });
 *   progress.finish({ outputDir: cfg.output.dir, files });
 *
 * The formatting functions are exported and pure (tested in test/cpu/outputs-progress.test.ts).
 */
import type { Writable } from 'node:stream';

export type PhaseName = 'geometry' | 'texture' | (string & {});

/** One progress report from the pipeline: `iteration` of `total` done in `phase`. */
export interface ProgressUpdate {
  phase: PhaseName;
  /** Iterations completed (1-based: `total` when the phase is done). */
  iteration: number;
  total: number;
  /** A sub-stage, e.g. 'latent' / 'rgb' in the texture phase. */
  stage?: string;
  /** Scalar metrics to show (the first `maxMetrics` by default), e.g. {loss, gradNorm, t}. */
  metrics?: Record<string, number>;
}

/** The events written as JSON lines (and their shapes). */
export type ProgressEvent =
  | { event: 'phase-start'; phase: PhaseName; total: number }
  | ({ event: 'progress'; elapsed: number; itPerSecond: number | null; eta: number | null } & ProgressUpdate)
  | { event: 'phase-end'; phase: PhaseName; iterations: number; seconds: number; itPerSecond: number | null; metrics?: Record<string, number> }
  | { event: 'log'; level: 'info' | 'warn'; message: string }
  | { event: 'done'; seconds: number; outputDir?: string; files?: string[]; phases: PhaseSummary[] }
  | { event: 'error'; code: string; message: string; seconds: number };

export interface PhaseSummary {
  phase: PhaseName;
  iterations: number;
  seconds: number;
  itPerSecond: number | null;
  metrics?: Record<string, number>;
}

// ----------------------------------------------------------------------------------------------- formatting

/** 75 -> "1:15", 3725 -> "1:02:05"; non-finite or negative -> "--:--". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/** 14.23 -> "14.2 it/s"; below 1 it/s the time per iteration: 0.25 -> "4.00 s/it"; unknown -> "-- it/s". */
export function formatRate(itPerSecond: number | null | undefined): string {
  if (itPerSecond === null || itPerSecond === undefined || !Number.isFinite(itPerSecond) || itPerSecond <= 0) return '-- it/s';
  if (itPerSecond >= 100) return `${Math.round(itPerSecond)} it/s`;
  if (itPerSecond >= 1) return `${itPerSecond.toFixed(1)} it/s`;
  return `${(1 / itPerSecond).toFixed(2)} s/it`;
}

/** A metric value with 4 significant digits, exponent form for very small/large: 0.123456 -> "0.1235", 1.5e-7 -> "1.50e-7". */
export function formatMetricValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** A bar of `width` cells for a fraction in [0, 1], with eighth-cell resolution ("█▌░░"). ASCII: "###-". */
export function renderBar(fraction: number, width: number, ascii = false): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  if (width <= 0) return '';
  if (ascii) {
    const full = Math.round(f * width);
    return '#'.repeat(full) + '-'.repeat(width - full);
  }
  const eighths = Math.round(f * width * 8);
  const full = Math.floor(eighths / 8);
  const part = eighths % 8;
  const partial = part > 0 ? '▏▎▍▌▋▊▉'[part - 1] : '';
  return '█'.repeat(full) + partial + '░'.repeat(width - full - (partial ? 1 : 0));
}

export interface LineState {
  phase: PhaseName;
  stage?: string;
  iteration: number;
  total: number;
  itPerSecond: number | null;
  eta: number | null;
  metrics?: Record<string, number>;
}

/**
 * The TTY progress line, fitted to `columns`: phase, bar, iteration/total, percent, rate, ETA, metrics. Metrics
 * and then the bar are shortened first when the terminal is narrow.
 */
export function formatProgressLine(s: LineState, columns = 100, opts: { maxMetrics?: number; ascii?: boolean } = {}): string {
  const name = s.stage ? `${s.phase}/${s.stage}` : s.phase;
  const total = Math.max(1, s.total);
  const frac = s.iteration / total;
  const counts = `${String(s.iteration).padStart(String(s.total).length)}/${s.total}`;
  const pct = `${String(Math.floor(frac * 100)).padStart(3)}%`;
  const tail = `${formatRate(s.itPerSecond)}  ETA ${formatDuration(s.eta)}`;
  const metrics = Object.entries(s.metrics ?? {})
    .slice(0, opts.maxMetrics ?? 2)
    .map(([k, v]) => `${k} ${formatMetricValue(v)}`)
    .join('  ');
  const head = name.padEnd(10);
  const fixed = `${head}  ${counts}  ${pct}  ${tail}`;
  let barWidth = Math.min(30, columns - fixed.length - 4 - (metrics ? metrics.length + 2 : 0));
  let withMetrics = !!metrics;
  if (barWidth < 10 && metrics) {
    withMetrics = false;
    barWidth = Math.min(30, columns - fixed.length - 4);
  }
  const bar = barWidth >= 5 ? `  ${renderBar(frac, barWidth, opts.ascii)}` : '';
  const line = `${head}${bar}  ${counts}  ${pct}  ${tail}${withMetrics ? `  ${metrics}` : ''}`;
  return line.length > columns ? line.slice(0, Math.max(0, columns - 1)) + '…' : line;
}

/** One JSON line (no trailing newline); non-finite numbers become null. */
export function formatJsonEvent(e: ProgressEvent): string {
  return JSON.stringify(e, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : typeof v === 'number' ? Number(v.toPrecision(6)) : v));
}

/** The final summary line: "done in 1:23: geometry 200 it in 0:14 (14.2 it/s), texture ... -> out (6 files)". */
export function formatSummary(s: { seconds: number; phases: PhaseSummary[]; outputDir?: string; files?: string[] }): string {
  const phases = s.phases.map((p) => `${p.phase} ${p.iterations} it in ${formatDuration(p.seconds)} (${formatRate(p.itPerSecond)})`).join(', ');
  const out = s.outputDir ? ` -> ${s.outputDir}${s.files ? ` (${s.files.length} file${s.files.length === 1 ? '' : 's'})` : ''}` : '';
  return `done in ${formatDuration(s.seconds)}${phases ? `: ${phases}` : ''}${out}`;
}

// ----------------------------------------------------------------------------------------------- rate

/** Iterations per second over a sliding window of recent updates (robust to a slow first iteration). */
export class RateMeter {
  private samples: Array<{ t: number; it: number }> = [];
  constructor(private readonly windowSeconds = 10, private readonly maxSamples = 64) {}
  reset(): void {
    this.samples = [];
  }
  add(t: number, iteration: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && iteration < last.it) this.samples = [];
    this.samples.push({ t, it: iteration });
    while (this.samples.length > this.maxSamples || (this.samples.length > 2 && t - this.samples[1].t > this.windowSeconds)) this.samples.shift();
  }
  /** Iterations per second, or null before two samples. */
  rate(): number | null {
    if (this.samples.length < 2) return null;
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    return b.t > a.t && b.it > a.it ? (b.it - a.it) / (b.t - a.t) : null;
  }
}

// ----------------------------------------------------------------------------------------------- reporter

export interface ProgressReporterOptions {
  /** 'bar' (TTY line), 'json' (JSON lines), 'none', or 'auto': 'bar' when the stream is a TTY, else 'json'. */
  mode?: 'auto' | 'bar' | 'json' | 'none';
  /** Where to write. Default: stderr for the bar, stdout for JSON lines. */
  stream?: Writable & { isTTY?: boolean; columns?: number };
  /** Seconds clock (injectable for tests). Default: performance.now() / 1000. */
  now?: () => number;
  /** Metrics shown on the bar. Default 2. */
  maxMetrics?: number;
  /** Minimum seconds between bar redraws. Default 0.1. */
  redrawInterval?: number;
  /** ASCII bar (no Unicode blocks). Default: when the locale is not UTF-8. */
  ascii?: boolean;
}

export interface ProgressReporter {
  readonly mode: 'bar' | 'json' | 'none';
  /**
   * A progress report. A new phase (or a restart) is detected from `phase`, and a phase ends when `iteration`
   * reaches `total`; call `phaseStart` before the first iteration for exact timings of the first iteration.
   */
  update(u: ProgressUpdate): void;
  /** Announce a phase (optional: `update` starts phases on its own). */
  phaseStart(phase: PhaseName, total: number): void;
  /** Close the current phase (optional: the next phase or `finish` closes it). */
  phaseEnd(metrics?: Record<string, number>): void;
  log(message: string, level?: 'info' | 'warn'): void;
  /** Close the last phase and print the summary; returns it. */
  finish(info?: { outputDir?: string; files?: string[] }): { seconds: number; phases: PhaseSummary[] };
  /** Report a failure (closes the bar line). */
  fail(error: { code?: string; message: string }): void;
  /** Per-phase summaries so far. */
  readonly phases: readonly PhaseSummary[];
}

function utf8Locale(): boolean {
  const l = `${process.env.LC_ALL ?? ''}${process.env.LC_CTYPE ?? ''}${process.env.LANG ?? ''}`;
  return l === '' || /utf-?8/i.test(l);
}

export function createProgressReporter(options: ProgressReporterOptions = {}): ProgressReporter {
  const requested = options.mode ?? 'auto';
  const errStream = (options.stream ?? process.stderr) as Writable & { isTTY?: boolean; columns?: number };
  const mode: 'bar' | 'json' | 'none' = requested === 'auto' ? (errStream.isTTY ? 'bar' : 'json') : requested;
  const stream = options.stream ?? (mode === 'json' ? process.stdout : process.stderr);
  const tty = stream as Writable & { columns?: number };
  const now = options.now ?? (() => performance.now() / 1000);
  const ascii = options.ascii ?? !utf8Locale();
  const redraw = options.redrawInterval ?? 0.1;
  const t0 = now();
  const phases: PhaseSummary[] = [];
  const meter = new RateMeter();
  // itAtStart: iterations already done when timing started (0 after phaseStart; the first update's otherwise)
  let cur: { phase: PhaseName; total: number; start: number; itAtStart: number; last?: ProgressUpdate } | undefined;
  let lastClosed: { phase: PhaseName; iterations: number } | undefined;
  let lastDraw = -Infinity;
  let lineOpen = false;
  let lastLine = '';

  const write = (s: string) => {
    stream.write(s);
  };
  const emit = (e: ProgressEvent) => {
    if (mode === 'json') write(formatJsonEvent(e) + '\n');
  };
  const clearLine = () => {
    if (lineOpen) {
      write('\r\x1b[K');
      lineOpen = false;
    }
  };
  const draw = (force: boolean) => {
    if (mode !== 'bar' || !cur?.last) return;
    const t = now();
    if (!force && t - lastDraw < redraw) return;
    lastDraw = t;
    const u = cur.last;
    const rate = meter.rate();
    const line = formatProgressLine(
      { phase: u.phase, stage: u.stage, iteration: u.iteration, total: u.total, itPerSecond: rate, eta: rate ? (u.total - u.iteration) / rate : null, metrics: u.metrics },
      (tty.columns ?? 100) - 1,
      { maxMetrics: options.maxMetrics, ascii },
    );
    if (line === lastLine && lineOpen) return;
    write(`\r${line}\x1b[K`);
    lastLine = line;
    lineOpen = true;
  };
  const endPhase = (metrics?: Record<string, number>) => {
    if (!cur) return;
    const seconds = now() - cur.start;
    const iterations = cur.last?.iteration ?? 0;
    const timed = iterations - cur.itAtStart;
    const s: PhaseSummary = { phase: cur.phase, iterations, seconds, itPerSecond: seconds > 0 && timed > 0 ? timed / seconds : null, metrics: metrics ?? cur.last?.metrics };
    lastClosed = { phase: cur.phase, iterations };
    phases.push(s);
    if (mode === 'bar') {
      draw(true);
      if (lineOpen) write('\n');
      lineOpen = false;
      lastLine = '';
    }
    emit({ event: 'phase-end', phase: s.phase, iterations: s.iterations, seconds: s.seconds, itPerSecond: s.itPerSecond, ...(s.metrics ? { metrics: s.metrics } : {}) });
    cur = undefined;
  };
  const startPhase = (phase: PhaseName, total: number, firstUpdate?: ProgressUpdate) => {
    if (cur) endPhase();
    lastClosed = undefined;
    cur = { phase, total, start: now(), itAtStart: firstUpdate ? firstUpdate.iteration : 0 };
    meter.reset();
    if (!firstUpdate) meter.add(cur.start, 0);
    emit({ event: 'phase-start', phase, total });
  };

  return {
    mode,
    get phases() {
      return phases;
    },
    phaseStart: (phase, total) => startPhase(phase, total),
    phaseEnd: endPhase,
    update(u) {
      // a repeated final report of a phase that already ended is not a new phase
      if (!cur && lastClosed && lastClosed.phase === u.phase && u.iteration >= lastClosed.iterations) return;
      if (!cur || cur.phase !== u.phase || (cur.last && u.iteration < cur.last.iteration)) startPhase(u.phase, u.total, u);
      const t = now();
      cur!.last = u;
      cur!.total = u.total;
      meter.add(t, u.iteration);
      const rate = meter.rate();
      if (mode === 'json') {
        emit({ event: 'progress', phase: u.phase, ...(u.stage ? { stage: u.stage } : {}), iteration: u.iteration, total: u.total, elapsed: t - cur!.start, itPerSecond: rate, eta: rate ? (u.total - u.iteration) / rate : null, ...(u.metrics ? { metrics: u.metrics } : {}) });
      } else draw(u.iteration >= u.total);
      if (u.iteration >= u.total) endPhase();
    },
    log(message, level = 'info') {
      if (mode === 'json') emit({ event: 'log', level, message });
      else if (mode === 'bar') {
        clearLine();
        write(`${level === 'warn' ? 'warning: ' : ''}${message}\n`);
        lastLine = '';
        draw(true);
      }
    },
    finish(info = {}) {
      endPhase();
      const seconds = now() - t0;
      const summary = { seconds, phases: [...phases] };
      if (mode === 'json') emit({ event: 'done', seconds, ...(info.outputDir ? { outputDir: info.outputDir } : {}), ...(info.files ? { files: info.files } : {}), phases: summary.phases });
      else if (mode === 'bar') write(formatSummary({ ...summary, ...info }) + '\n');
      return summary;
    },
    fail(error) {
      const seconds = now() - t0;
      if (mode === 'bar') {
        if (lineOpen) write('\n');
        lineOpen = false;
      }
      emit({ event: 'error', code: error.code ?? 'E_INTERNAL', message: error.message, seconds });
      cur = undefined;
    },
  };
}
