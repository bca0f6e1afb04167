package dev.mobilize.bench.core;

import java.util.Map;

/** What the core reads from the platform, so the JDK tests can supply it. */
public final class Probes {
  private Probes() {}

  /** A monotonic clock in nanoseconds (System.nanoTime on the phone). */
  public interface Ticker {
    long nanoTime();
  }

  public static final Ticker SYSTEM_TICKER =
      new Ticker() {
        @Override
        public long nanoTime() {
          return System.nanoTime();
        }
      };

  /** Memory of this process in kB; null where a figure cannot be read. */
  public interface MemoryProbe {
    MemorySnapshot snapshot();
  }

  /** PowerManager's thermal status as the schema spells it (none, light, ...), or null. */
  public interface ThermalProbe {
    String status();
  }

  /** Device facts (the schema's `device` object) and the runtime's and app's versions. */
  public interface Facts {
    Map<String, Object> device();

    String runtimeName();

    String runtimeVersion();

    String appVersion();
  }
}
