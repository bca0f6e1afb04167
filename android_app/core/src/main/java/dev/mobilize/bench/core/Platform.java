package dev.mobilize.bench.core;

import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.Locale;
import java.util.TimeZone;

/** Everything the core reads from the phone, gathered so tests can hand in their own. */
public final class Platform {
  /** Wall-clock time in milliseconds since the epoch, for started_at/finished_at. */
  public interface WallClock {
    long currentTimeMillis();
  }

  public static final WallClock SYSTEM_WALL_CLOCK =
      new WallClock() {
        @Override
        public long currentTimeMillis() {
          return System.currentTimeMillis();
        }
      };

  public final Probes.Ticker ticker;
  public final WallClock wallClock;
  public final Probes.MemoryProbe memory;
  public final Probes.ThermalProbe thermal;
  public final Probes.Facts facts;

  public Platform(
      Probes.Ticker ticker,
      WallClock wallClock,
      Probes.MemoryProbe memory,
      Probes.ThermalProbe thermal,
      Probes.Facts facts) {
    this.ticker = ticker;
    this.wallClock = wallClock;
    this.memory = memory;
    this.thermal = thermal;
    this.facts = facts;
  }

  /** ISO 8601 in UTC with milliseconds, e.g. 2026-11-23T08:45:00.123Z. */
  public String isoNow() {
    SimpleDateFormat format = new SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.US);
    format.setTimeZone(TimeZone.getTimeZone("UTC"));
    return format.format(new Date(wallClock.currentTimeMillis()));
  }
}
