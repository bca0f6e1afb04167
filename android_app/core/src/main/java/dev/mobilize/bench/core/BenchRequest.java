package dev.mobilize.bench.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The intent extras of one run, checked. Built from a plain Map so the JDK tests can drive it;
 * the activity copies its Bundle into one.
 */
public final class BenchRequest {
  public static final String DEFAULT_DELEGATE = "cpu";
  public static final int DEFAULT_THREADS = 1;
  public static final int DEFAULT_WARMUP_RUNS = 1;
  public static final int DEFAULT_NUM_RUNS = 50;
  public static final String DEFAULT_GPU_PRECISION = "fp16";

  public final String runId;
  public final String modelPath;
  public final Delegate delegate;
  public final int threads;
  public final int warmupRuns;
  public final int numRuns;
  public final GpuPrecision gpuPrecision;
  /** Folder of .npy inputs for the quality gate, or null. */
  public final String qualityInputsDir;
  /** Where the quality gate's outputs go, or null. */
  public final String qualityOutputsDir;

  private BenchRequest(
      String runId,
      String modelPath,
      Delegate delegate,
      int threads,
      int warmupRuns,
      int numRuns,
      GpuPrecision gpuPrecision,
      String qualityInputsDir,
      String qualityOutputsDir) {
    this.runId = runId;
    this.modelPath = modelPath;
    this.delegate = delegate;
    this.threads = threads;
    this.warmupRuns = warmupRuns;
    this.numRuns = numRuns;
    this.gpuPrecision = gpuPrecision;
    this.qualityInputsDir = qualityInputsDir;
    this.qualityOutputsDir = qualityOutputsDir;
  }

  public boolean wantsQuality() {
    return qualityInputsDir != null;
  }

  /** The request, or a BenchFailure(INVALID_ARGUMENTS) naming every problem found. */
  public static BenchRequest parse(Map<String, ?> extras) throws BenchFailure {
    List<String> problems = new ArrayList<>();
    String runId = string(extras, BenchContract.EXTRA_RUN_ID, null, problems);
    String modelPath = string(extras, BenchContract.EXTRA_MODEL_PATH, null, problems);
    String delegateName =
        string(extras, BenchContract.EXTRA_DELEGATE, DEFAULT_DELEGATE, problems);
    String precisionName =
        string(extras, BenchContract.EXTRA_GPU_PRECISION, DEFAULT_GPU_PRECISION, problems);
    Integer threads = integer(extras, BenchContract.EXTRA_THREADS, DEFAULT_THREADS, problems);
    Integer warmups =
        integer(extras, BenchContract.EXTRA_WARMUP_RUNS, DEFAULT_WARMUP_RUNS, problems);
    Integer runs = integer(extras, BenchContract.EXTRA_NUM_RUNS, DEFAULT_NUM_RUNS, problems);
    String qualityIn = string(extras, BenchContract.EXTRA_QUALITY_INPUTS, null, problems);
    String qualityOut = string(extras, BenchContract.EXTRA_QUALITY_OUTPUTS, null, problems);

    if (!isValidRunId(runId)) {
      problems.add("run_id must be a non-empty name without '/'");
    }
    if (modelPath == null || modelPath.isEmpty()) {
      problems.add("model_path is missing");
    }
    Delegate delegate = Delegate.fromWire(delegateName);
    if (delegateName != null && delegate == null) {
      problems.add("delegate must be one of cpu, gpu, nnapi (got '" + delegateName + "')");
    }
    GpuPrecision precision = GpuPrecision.fromWire(precisionName);
    if (precisionName != null && precision == null) {
      problems.add("gpu_precision must be one of fp16, fp32 (got '" + precisionName + "')");
    }
    if (threads != null && threads < 1) {
      problems.add("threads must be an integer >= 1");
    }
    if (warmups != null && warmups < 0) {
      problems.add("warmup_runs must be an integer >= 0");
    }
    if (runs != null && runs < 1) {
      problems.add("num_runs must be an integer >= 1");
    }
    if (isEmpty(qualityIn) != isEmpty(qualityOut)) {
      problems.add("quality_inputs_dir and quality_outputs_dir go together");
    }
    if (!problems.isEmpty()) {
      throw new BenchFailure(Status.INVALID_ARGUMENTS, join(problems));
    }
    return new BenchRequest(
        runId,
        modelPath,
        delegate,
        threads,
        warmups,
        runs,
        precision,
        isEmpty(qualityIn) ? null : qualityIn,
        isEmpty(qualityOut) ? null : qualityOut);
  }

  /** A run id names a file: non-empty, no path separator. */
  public static boolean isValidRunId(String runId) {
    return runId != null && !runId.isEmpty() && runId.indexOf('/') < 0 && !runId.startsWith(".");
  }

  private static boolean isEmpty(String value) {
    return value == null || value.isEmpty();
  }

  private static String string(
      Map<String, ?> extras, String name, String fallback, List<String> problems) {
    Object value = extras.get(name);
    if (value == null) {
      return fallback;
    }
    if (!(value instanceof String)) {
      problems.add(name + " must be a string (pass it with --es)");
      return null;
    }
    return (String) value;
  }

  private static Integer integer(
      Map<String, ?> extras, String name, int fallback, List<String> problems) {
    Object value = extras.get(name);
    if (value == null) {
      return fallback;
    }
    if (value instanceof Integer || value instanceof Long || value instanceof Short) {
      long number = ((Number) value).longValue();
      if (number >= Integer.MIN_VALUE && number <= Integer.MAX_VALUE) {
        return (int) number;
      }
    } else if (value instanceof String) {
      // `am start --es threads 4` also reaches us; accept a plain decimal integer.
      try {
        return Integer.parseInt(((String) value).trim());
      } catch (NumberFormatException ignored) {
        // reported below
      }
    }
    problems.add(name + " must be an integer (pass it with --ei), not '" + value + "'");
    return null;
  }

  static String join(List<String> parts) {
    StringBuilder text = new StringBuilder();
    for (String part : parts) {
      if (text.length() > 0) {
        text.append("; ");
      }
      text.append(part);
    }
    return text.toString();
  }
}
