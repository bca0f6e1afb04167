package dev.mobilize.bench.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Name, shape and dtype (numpy spelling: float32, int8, ...) of a model input or output. */
public final class TensorSpec {
  public final String name;
  public final int[] shape;
  public final String dtype;

  public TensorSpec(String name, int[] shape, String dtype) {
    this.name = name;
    this.shape = shape.clone();
    this.dtype = dtype;
  }

  public long elementCount() {
    long count = 1;
    for (int dim : shape) {
      count *= dim;
    }
    return count;
  }

  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("name", name);
    List<Object> dims = new ArrayList<>();
    for (int dim : shape) {
      dims.add(dim);
    }
    json.put("shape", dims);
    json.put("dtype", dtype);
    return json;
  }
}
