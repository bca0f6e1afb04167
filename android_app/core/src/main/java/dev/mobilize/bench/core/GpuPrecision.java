package dev.mobilize.bench.core;

/** fp16 lets the GPU delegate compute in half precision; fp32 keeps full precision. */
public enum GpuPrecision {
  FP16("fp16"),
  FP32("fp32");

  public final String wireName;

  GpuPrecision(String wireName) {
    this.wireName = wireName;
  }

  public static GpuPrecision fromWire(String name) {
    for (GpuPrecision precision : values()) {
      if (precision.wireName.equals(name)) {
        return precision;
      }
    }
    return null;
  }
}
