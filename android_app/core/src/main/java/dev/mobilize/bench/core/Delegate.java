package dev.mobilize.bench.core;

/** The delegate asked for with the `delegate` extra. */
public enum Delegate {
  CPU("cpu"),
  GPU("gpu"),
  NNAPI("nnapi");

  public final String wireName;

  Delegate(String wireName) {
    this.wireName = wireName;
  }

  /** The delegate of that wire name, or null. */
  public static Delegate fromWire(String name) {
    for (Delegate delegate : values()) {
      if (delegate.wireName.equals(name)) {
        return delegate;
      }
    }
    return null;
  }
}
