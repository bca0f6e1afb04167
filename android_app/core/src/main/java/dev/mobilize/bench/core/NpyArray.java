package dev.mobilize.bench.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** A C-ordered, little-endian array as a .npy file holds it: dtype, shape and raw bytes. */
public final class NpyArray {
  /** numpy dtype name (float32, int8, ...). */
  public final String dtype;

  public final int[] shape;
  private final byte[] data;

  public NpyArray(String dtype, int[] shape, byte[] data) {
    int itemSize = itemSize(dtype);
    long count = 1;
    for (int dim : shape) {
      if (dim < 0) {
        throw new IllegalArgumentException("negative dimension in shape");
      }
      count *= dim;
    }
    if (count * itemSize != data.length) {
      throw new IllegalArgumentException(
          "data holds " + data.length + " bytes, shape and dtype need " + count * itemSize);
    }
    this.dtype = dtype;
    this.shape = shape.clone();
    this.data = data.clone();
  }

  public static NpyArray ofFloats(int[] shape, float[] values) {
    ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buffer.asFloatBuffer().put(values);
    return new NpyArray("float32", shape, buffer.array());
  }

  public byte[] data() {
    return data.clone();
  }

  /** The data as a little-endian buffer, ready to copy into a tensor. */
  public ByteBuffer buffer() {
    return ByteBuffer.wrap(data.clone()).order(ByteOrder.LITTLE_ENDIAN);
  }

  public long elementCount() {
    return data.length / itemSize(dtype);
  }

  public float[] floats() {
    if (!"float32".equals(dtype)) {
      throw new IllegalStateException("not float32 but " + dtype);
    }
    float[] values = new float[data.length / 4];
    buffer().asFloatBuffer().get(values);
    return values;
  }

  public static int itemSize(String dtype) {
    String descr = Npy.descrOf(dtype);
    return Integer.parseInt(descr.substring(2));
  }
}
