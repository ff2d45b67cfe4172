/**
 * The batch progress line (src/ui/progress.ts): what it says, the total arriving after the
 * batch has started, how often it is redrawn, and how it steps aside for other output.
 */
import { describe, expect, it } from 'vitest';
import { emptyStats, type BatchStats } from '../../src/render/summary.js';
import { PLAIN } from '../../src/ui/colors.js';
import { Progress } from '../../src/ui/progress.js';
import { Reporter } from '../../src/ui/reporter.js';
import { collector } from '../helpers/streams.js';

function setup(opts: { enabled?: boolean; total?: number; columns?: number } = {}) {
  const stream = collector({ isTTY: true, columns: opts.columns ?? 120 });
  const reporter = new Reporter(stream, {
    painter: PLAIN,
    quiet: false,
    debug: false,
  });
  const clock = { now: 0 };
  const progress = new Progress(reporter, {
    enabled: opts.enabled ?? true,
    now: () => clock.now,
    total: opts.total,
  });
  return { stream, reporter, clock, progress };
}

function stats(over: Partial<BatchStats> = {}): BatchStats {
  return { ...emptyStats(), ...over };
}

describe('the progress line', () => {
  it('done/total, failed, tokens, images per second and ETA', () => {
    const { progress, clock } = setup({ total: 1000 });
    clock.now = 10_000;
    const line = progress.line(
      stats({ succeeded: 95, failed: 5, promptTokens: 12_000, completionTokens: 3_456 }),
    );
    expect(line).toBe('100/1,000 · 5 failed · 15,456 tokens · 10 img/s · ETA 1m30s');
  });

  it('before the total is known: images found so far, with a "+", and no ETA', () => {
    const { progress, clock } = setup();
    clock.now = 2_000;
    progress.setSeen(40);
    expect(progress.line(stats({ succeeded: 3, total: 7 }))).toBe('3/40+ · 0 tokens · 1.5 img/s');
    // The count finishes beside the batch: from then on the line has the total and an ETA.
    progress.setTotal(200);
    expect(progress.line(stats({ succeeded: 3, total: 7 }))).toBe(
      '3/200 · 0 tokens · 1.5 img/s · ETA 2m11s',
    );
  });

  it('is cut to the terminal width', () => {
    const { progress, clock } = setup({ total: 1000, columns: 20 });
    clock.now = 1_000;
    expect(progress.line(stats({ succeeded: 1 }))).toHaveLength(19);
  });

  it('is drawn at most ten times a second, over itself', () => {
    const { progress, clock, stream } = setup({ total: 10 });
    clock.now = 1_000;
    progress.update(stats({ succeeded: 1 }));
    clock.now = 1_050;
    progress.update(stats({ succeeded: 2 }));
    expect(stream.text).toBe('\r1/10 · 0 tokens · 1.0 img/s · ETA 9.0 s\x1b[K');
    clock.now = 1_100;
    progress.update(stats({ succeeded: 3 }));
    expect(stream.text.split('\r')).toHaveLength(3);
  });

  it('steps aside for a stderr line and for stdout, then comes back', () => {
    const { progress, clock, stream, reporter } = setup({ total: 10 });
    clock.now = 1_000;
    progress.update(stats({ succeeded: 1 }));
    stream.text = '';
    reporter.line('a warning');
    expect(stream.text).toBe('\r\x1b[Ka warning\n\r1/10 · 0 tokens · 1.0 img/s · ETA 9.0 s\x1b[K');
    stream.text = '';
    let wrote = '';
    progress.above(() => (wrote = 'answer'));
    expect(wrote).toBe('answer');
    expect(stream.text).toBe('\r\x1b[K\r1/10 · 0 tokens · 1.0 img/s · ETA 9.0 s\x1b[K');
    stream.text = '';
    progress.stop();
    expect(stream.text).toBe('\r\x1b[K');
    reporter.line('after');
    expect(stream.text).toBe('\r\x1b[Kafter\n');
  });

  it('draws nothing when not enabled (stderr not a terminal, --quiet, CI)', () => {
    const { progress, clock, stream } = setup({ enabled: false, total: 10 });
    clock.now = 1_000;
    progress.update(stats({ succeeded: 1 }));
    progress.above(() => undefined);
    progress.stop();
    expect(progress.enabled).toBe(false);
    expect(stream.text).toBe('');
  });
});
