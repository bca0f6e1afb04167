package dev.mobilize.bench.core;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Derived latency statistics with the definitions of device_bench/stats.py: percentiles by
 * linear interpolation between closest ranks (numpy's default), population standard deviation.
 */
public final class Stats {
  public final int count;
  public final double min;
  public final double max;
  public final double mean;
  public final double std;
  public final double p50;
  public final double p90;
  public final double p99;

  private Stats(double[] sorted) {
    count = sorted.length;
    min = sorted[0];
    max = sorted[count - 1];
    mean = mean(sorted);
    // Two passes, as numpy does: the mean first, then the squared deviations from it.
    double squares = 0.0;
    for (double value : sorted) {
      double deviation = value - mean;
      squares += deviation * deviation;
    }
    std = Math.sqrt(squares / count);
    p50 = percentile(sorted, 50.0);
    p90 = percentile(sorted, 90.0);
    p99 = percentile(sorted, 99.0);
  }

  /** The statistics of raw samples, or null when there are none. */
  public static Stats of(double[] samples) {
    if (samples.length == 0) {
      return null;
    }
    double[] sorted = samples.clone();
    Arrays.sort(sorted);
    return new Stats(sorted);
  }

  /** numpy.percentile(values, q, method="linear") of already sorted values. */
  public static double percentile(double[] sorted, double q) {
    if (sorted.length == 0) {
      throw new IllegalArgumentException("no values");
    }
    double rank = (sorted.length - 1) * (q / 100.0);
    int below = (int) Math.floor(rank);
    int above = Math.min(below + 1, sorted.length - 1);
    double fraction = rank - below;
    // numpy's lerp: exact at both ends, so a constant series gives that constant.
    double low = sorted[below];
    double high = sorted[above];
    return fraction >= 0.5 ? high - (high - low) * (1.0 - fraction) : low + (high - low) * fraction;
  }

  private static double mean(double[] values) {
    double sum = 0.0;
    for (double value : values) {
      sum += value;
    }
    return sum / values.length;
  }

  /** The schema's `stats` object. */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("count", count);
    json.put("min", min);
    json.put("max", max);
    json.put("mean", mean);
    json.put("std", std);
    json.put("p50", p50);
    json.put("p90", p90);
    json.put("p99", p99);
    return json;
  }
}
