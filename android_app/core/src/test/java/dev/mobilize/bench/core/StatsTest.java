package dev.mobilize.bench.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import org.junit.Test;

public class StatsTest {
  @Test
  public void matchesNumpyLinearPercentilesAndPopulationStd() {
    // numpy: np.percentile([10,1,4,3,2], [50,90,99]) == [3.0, 7.6, 9.76]; std == sqrt(10)
    Stats stats = Stats.of(new double[] {10, 1, 4, 3, 2});
    assertEquals(5, stats.count);
    assertEquals(1.0, stats.min, 0.0);
    assertEquals(10.0, stats.max, 0.0);
    assertEquals(4.0, stats.mean, 1e-12);
    assertEquals(Math.sqrt(10.0), stats.std, 1e-12);
    assertEquals(3.0, stats.p50, 1e-12);
    assertEquals(7.6, stats.p90, 1e-12);
    assertEquals(9.76, stats.p99, 1e-12);
  }

  @Test
  public void evenCountMedianIsTheMiddlePairsMean() {
    Stats stats = Stats.of(new double[] {4, 1, 3, 2});
    assertEquals(2.5, stats.p50, 1e-12);
    assertEquals(3.7, stats.p90, 1e-12);
  }

  @Test
  public void oneSampleAndConstantSeries() {
    Stats one = Stats.of(new double[] {1234.5});
    assertEquals(1234.5, one.p99, 0.0);
    assertEquals(0.0, one.std, 0.0);
    Stats same = Stats.of(new double[] {0.1, 0.1, 0.1});
    assertEquals(0.1, same.p90, 0.0);
    assertEquals(0.1, same.p50, 0.0);
  }

  @Test
  public void noSamplesNoStats() {
    assertNull(Stats.of(new double[0]));
  }

  @Test
  public void inputIsNotReordered() {
    double[] samples = {3, 1, 2};
    Stats.of(samples);
    assertEquals(3.0, samples[0], 0.0);
  }
}
