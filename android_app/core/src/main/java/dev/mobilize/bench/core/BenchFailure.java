package dev.mobilize.bench.core;

/** A run that cannot go on: becomes a result with this status and message, never a crash. */
public final class BenchFailure extends Exception {
  private static final long serialVersionUID = 1L;

  public final Status status;

  public BenchFailure(Status status, String message) {
    super(message);
    this.status = status;
  }

  public BenchFailure(Status status, String message, Throwable cause) {
    super(message, cause);
    this.status = status;
  }
}
