/**
 * The loop's second kind of interval (issue 36): Welch's t over training-seed means, beside the
 * hierarchical bootstrap. Checked against Student's t quantiles from the tables and Welch's
 * degrees of freedom worked by hand.
 */
import t from 'tap';
import { studentTCdf, studentTQuantile, welchInterval } from '../bench/quality/stats.js';

t.test("Student's t quantiles match the tables", async (t) => {
  for (const [df, q] of [[1, 12.7062], [2, 4.3027], [4, 2.7764], [10, 2.2281], [30, 2.0423], [1e6, 1.96]] as const) {
    t.ok(Math.abs(studentTQuantile(0.975, df) - q) < 1e-3, `t(0.975, ${df}) = ${studentTQuantile(0.975, df).toFixed(4)}, table ${q}`);
  }
  t.ok(Math.abs(studentTCdf(0, 3) - 0.5) < 1e-12, 'symmetric about 0');
  t.ok(Math.abs(studentTCdf(-2.7764, 4) - 0.025) < 1e-4, 'lower tail');
});

t.test("Welch's interval over seed means", async (t) => {
  // Equal sizes and variances: df = 2 (n - 1) = 4, se = sqrt(2 s^2 / n).
  const a = [0.46, 0.47, 0.48];
  const b = [0.43, 0.44, 0.45];
  const w = welchInterval(a, b);
  t.ok(Math.abs(w.difference - 0.03) < 1e-12);
  t.ok(Math.abs(w.df - 4) < 1e-9, `df ${w.df}`);
  const half = 2.776445 * Math.sqrt((2 * 0.0001) / 3);
  t.ok(Math.abs(w.low - (0.03 - half)) < 1e-5 && Math.abs(w.high - (0.03 + half)) < 1e-5, `[${w.low}, ${w.high}]`);
  // Unequal variances: df by Welch-Satterthwaite, (va + vb)^2 / (va^2 / 2 + vb^2 / 2) with va = vb / 100.
  const spread = welchInterval([0.5, 0.51, 0.52], [0.3, 0.4, 0.5]);
  const va = 0.0001 / 3, vb = 0.01 / 3;
  t.ok(Math.abs(spread.df - (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)) < 1e-9, `df ${spread.df}`);
  t.ok(spread.high - spread.low > 2 * (w.high - w.low), 'the wider seed spread widens the interval');
  t.ok(Number.isNaN(welchInterval([0.5], [0.4, 0.5]).low), 'one seed: no interval');
});
