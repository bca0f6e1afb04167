package dev.mobilize.bench.core;

/** A clock that moves only when told to. */
final class FakeTicker implements Probes.Ticker {
  private long now = 1_000_000_000L;

  void advance(long nanos) {
    now += nanos;
  }

  @Override
  public long nanoTime() {
    return now;
  }
}
