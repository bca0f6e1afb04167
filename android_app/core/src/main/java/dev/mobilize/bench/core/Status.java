package dev.mobilize.bench.core;

/** How a run ended; the wire names are the result schema's `status` values. */
public enum Status {
  OK("ok"),
  INVALID_ARGUMENTS("invalid_arguments"),
  MODEL_NOT_FOUND("model_not_found"),
  MODEL_LOAD_FAILED("model_load_failed"),
  DELEGATE_FAILED("delegate_failed"),
  INFERENCE_FAILED("inference_failed"),
  OUT_OF_MEMORY("out_of_memory");

  public final String wireName;

  Status(String wireName) {
    this.wireName = wireName;
  }
}
