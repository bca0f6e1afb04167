package dev.mobilize.bench.core;

/** PowerManager.THERMAL_STATUS_* (0..6) in the schema's spelling. */
public final class ThermalStatus {
  private static final String[] LABELS = {
    "none", "light", "moderate", "severe", "critical", "emergency", "shutdown"
  };

  private ThermalStatus() {}

  /** The label of a PowerManager thermal status, or null for a value it does not define. */
  public static String label(int status) {
    return status >= 0 && status < LABELS.length ? LABELS[status] : null;
  }
}
