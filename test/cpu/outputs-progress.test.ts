import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import {
  formatDuration,
  formatRate,
  formatMetricValue,
  renderBar,
  formatProgressLine,
  formatJsonEvent,
  formatSummary,
  RateMeter,
  createProgressReporter,
} from '../../lib/cli/progress';

class Capture extends Writable {
  text = '';
  isTTY?: boolean;
  columns?: number;
  constructor(tty: boolean, columns = 100) {
    super();
    if (tty) {
      this.isTTY = true;
      this.columns = columns;
    }
  }
  override _write(chunk: Buffer | string, _enc: string, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
  override write(chunk: any): boolean {
    this.text += chunk.toString();
    return true;
  }
}

test('durations, rates and metric values', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(75.4), '1:15');
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(Infinity), '--:--');
  assert.equal(formatDuration(null), '--:--');
  assert.equal(formatRate(14.23), '14.2 it/s');
  assert.equal(formatRate(250.4), '250 it/s');
  assert.equal(formatRate(0.25), '4.00 s/it');
  assert.equal(formatRate(null), '-- it/s');
  assert.equal(formatMetricValue(0.123456), '0.1235');
  assert.equal(formatMetricValue(1.5e-7), '1.50e-7');
  assert.equal(formatMetricValue(123456), '1.23e5');
  assert.equal(formatMetricValue(0), '0');
  assert.equal(formatMetricValue(NaN), 'NaN');
});

test('bars: eighth-cell resolution, clamped, ASCII fallback', () => {
  assert.equal(renderBar(0, 4), '░░░░');
  assert.equal(renderBar(1, 4), '████');
  assert.equal(renderBar(0.5, 4), '██░░');
  assert.equal(renderBar(0.5 + 1 / 8, 4), '██▌░'); // half a cell
  assert.equal(renderBar(0.5 + 1 / 16, 4), '██▎░'); // a quarter cell
  assert.equal(renderBar(2, 3), '███');
  assert.equal(renderBar(NaN, 3), '░░░');
  assert.equal(renderBar(0.5, 4, true), '##--');
  for (let f = 0; f <= 1; f += 0.037) assert.equal([...renderBar(f, 17)].length, 17);
});

test('the progress line shows phase, counts, percent, rate, ETA and metrics, and fits the terminal', () => {
  const s = { phase: 'geometry', iteration: 120, total: 200, itPerSecond: 14.23, eta: 80 / 14.23, metrics: { loss: 0.123456, t: 0.5, extra: 3 } };
  const line = formatProgressLine(s, 120, { ascii: true });
  assert.match(line, /^geometry {2,}#+-+ {2}120\/200 {2} 60% {2}14\.2 it\/s {2}ETA 0:06 {2}loss 0\.1235 {2}t 0\.5$/);
  assert.ok(!line.includes('extra'), 'two metrics by default');
  assert.ok(formatProgressLine(s, 120).length <= 120);
  const narrow = formatProgressLine(s, 60, { ascii: true });
  assert.ok(narrow.length <= 60, narrow);
  assert.ok(!narrow.includes('loss'), 'metrics go first on narrow terminals');
  assert.match(formatProgressLine({ ...s, stage: 'latent', iteration: 5, total: 400, itPerSecond: null, eta: null, metrics: undefined }, 100), /^texture|^geometry\/latent .* {2}5\/400 {2}  1% {2}-- it\/s {2}ETA --:--$/);
});

test('JSON events and the summary line', () => {
  const e = formatJsonEvent({ event: 'progress', phase: 'geometry', iteration: 10, total: 400, elapsed: 1.23456789, itPerSecond: Infinity, eta: null, metrics: { loss: 0.5 } });
  assert.deepEqual(JSON.parse(e), { event: 'progress', phase: 'geometry', iteration: 10, total: 400, elapsed: 1.23457, itPerSecond: null, eta: null, metrics: { loss: 0.5 } });
  assert.ok(!e.includes('\n'));
  assert.equal(
    formatSummary({ seconds: 83, outputDir: 'out', files: ['a', 'b'], phases: [{ phase: 'geometry', iterations: 200, seconds: 14, itPerSecond: 14.3 }, { phase: 'texture', iterations: 400, seconds: 60, itPerSecond: 6.67 }] }),
    'done in 1:23: geometry 200 it in 0:14 (14.3 it/s), texture 400 it in 1:00 (6.7 it/s) -> out (2 files)',
  );
});

test('rate meter: sliding window, reset on restart', () => {
  const m = new RateMeter(10);
  assert.equal(m.rate(), null);
  m.add(0, 0);
  m.add(1, 10);
  m.add(2, 20);
  assert.equal(m.rate(), 10);
  for (let t = 3; t <= 40; t++) m.add(t, 20 + (t - 2) * 2); // slows to 2 it/s
  assert.ok(Math.abs(m.rate()! - 2) < 1e-9, `window forgets the fast start: ${m.rate()}`);
  m.add(41, 0);
  assert.equal(m.rate(), null);
});

test('reporter in JSON mode: one object per event, phases detected from updates, final summary', () => {
  let t = 100;
  const out = new Capture(false);
  const r = createProgressReporter({ stream: out, now: () => t });
  assert.equal(r.mode, 'json');
  for (let i = 1; i <= 4; i++) {
    t += 0.5;
    r.update({ phase: 'geometry', iteration: i, total: 4, metrics: { loss: 1 / i } });
  }
  r.log('switching to texture');
  for (let i = 1; i <= 2; i++) {
    t += 1;
    r.update({ phase: 'texture', stage: 'latent', iteration: i, total: 2 });
  }
  const summary = r.finish({ outputDir: '/o', files: ['x'] });
  const events = out.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.event), ['phase-start', 'progress', 'progress', 'progress', 'progress', 'phase-end', 'log', 'phase-start', 'progress', 'progress', 'phase-end', 'done']);
  const p3 = events[3];
  assert.equal(p3.phase, 'geometry');
  assert.equal(p3.iteration, 3);
  assert.equal(p3.itPerSecond, 2);
  assert.equal(p3.eta, 0.5);
  assert.equal(p3.elapsed, 1); // timing starts at the first update when phaseStart was not called
  assert.deepEqual(events[5], { event: 'phase-end', phase: 'geometry', iterations: 4, seconds: 1.5, itPerSecond: 2, metrics: { loss: 0.25 } });
  assert.equal(events[8].stage, 'latent');
  assert.equal(summary.phases.length, 2);
  assert.equal(summary.seconds, 4);
  // a repeated final update does not start a new phase
  const again = createProgressReporter({ stream: new Capture(false), now: () => t });
  again.phaseStart('geometry', 2);
  t += 1;
  again.update({ phase: 'geometry', iteration: 1, total: 2 });
  t += 1;
  again.update({ phase: 'geometry', iteration: 2, total: 2 });
  again.update({ phase: 'geometry', iteration: 2, total: 2 });
  assert.deepEqual(again.phases.map((p) => [p.phase, p.iterations, p.seconds, p.itPerSecond]), [['geometry', 2, 2, 1]]);
  assert.deepEqual(events[11].files, ['x']);
});

test('reporter on a TTY: a redrawn line per phase, log lines above it, a summary at the end', () => {
  let t = 0;
  const out = new Capture(true, 100);
  const r = createProgressReporter({ stream: out, now: () => t, ascii: true, redrawInterval: 0 });
  assert.equal(r.mode, 'bar');
  for (let i = 1; i <= 3; i++) {
    t += 1;
    r.update({ phase: 'geometry', iteration: i, total: 3, metrics: { loss: 0.5 } });
  }
  assert.ok(out.text.endsWith('loss 0.5\x1b[K\n'), 'a finished phase ends its line');
  t += 1;
  r.update({ phase: 'texture', iteration: 1, total: 10 });
  r.log('hello');
  r.fail({ code: 'E_CUDA', message: 'boom' });
  const lines = out.text.split('\n');
  assert.match(lines[0], /\r.*geometry .*1\/3/);
  assert.match(lines[0], /3\/3 {2}100% {2}1\.0 it\/s {2}ETA 0:00 {2}loss 0\.5/);
  assert.ok(out.text.includes('1/10   10%  -- it/s  ETA --:--\x1b[K\r\x1b[Khello\n'), 'log clears the bar line first');
  assert.ok(out.text.endsWith('\n'));
  const none = createProgressReporter({ mode: 'none', stream: out });
  const before = out.text.length;
  none.update({ phase: 'geometry', iteration: 1, total: 1 });
  none.finish();
  assert.equal(out.text.length, before);
});
